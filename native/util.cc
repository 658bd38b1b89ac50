// util.cc: error and argument helpers (see util.h).
#include "util.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include <bpf/libbpf.h>

namespace xd {

// libbpf's own error numbers (enum libbpf_errno, 4000..4013).
static const char* const kLibbpfErrnoNames[] = {
    "LIBBPF_ERRNO__LIBELF",   "LIBBPF_ERRNO__FORMAT",  "LIBBPF_ERRNO__KVERSION", "LIBBPF_ERRNO__ENDIAN",
    "LIBBPF_ERRNO__INTERNAL", "LIBBPF_ERRNO__RELOC",   "LIBBPF_ERRNO__LOAD",     "LIBBPF_ERRNO__VERIFY",
    "LIBBPF_ERRNO__PROG2BIG", "LIBBPF_ERRNO__KVER",    "LIBBPF_ERRNO__PROGTYPE", "LIBBPF_ERRNO__WRNGPID",
    "LIBBPF_ERRNO__INVSEQ",   "LIBBPF_ERRNO__NLPARSE",
};

std::string ErrnoName(int err) {
  if (err >= __LIBBPF_ERRNO__START && err < __LIBBPF_ERRNO__START + 14)
    return kLibbpfErrnoNames[err - __LIBBPF_ERRNO__START];
  // strerrorname_np: glibc >= 2.32 (Debian 12 has 2.36).
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

Napi::Error SystemError(Napi::Env env, int err, const std::string& syscall) {
  if (err < 0) err = -err;
  if (err == 0) err = EINVAL;  // a failure with no errno still needs a code
  char buf[256];
  if (err >= __LIBBPF_ERRNO__START && err < __LIBBPF_ERRNO__END) {
    libbpf_strerror(err, buf, sizeof(buf));  // "Invalid ELF format", ...
  } else {
    snprintf(buf, sizeof(buf), "%s", strerror(err));
  }
  std::string msg = syscall + ": " + buf;
  Napi::Error e = Napi::Error::New(env, msg);
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, -err));
  o.Set("code", Napi::String::New(env, ErrnoName(err)));
  o.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

void ThrowSystemError(Napi::Env env, int err, const std::string& syscall) {
  SystemError(env, err, syscall).ThrowAsJavaScriptException();
}

std::string Describe(Napi::Value v) {
  switch (v.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return std::string("boolean ") + (v.As<Napi::Boolean>().Value() ? "true" : "false");
    case napi_number: {
      double d = v.As<Napi::Number>().DoubleValue();
      char buf[64];
      snprintf(buf, sizeof(buf), "number %.17g", d);
      return buf;
    }
    case napi_string: {
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "string \"" + s + "\"";
    }
    case napi_bigint:
      return "bigint";
    case napi_symbol:
      return "symbol";
    case napi_function:
      return "function";
    case napi_object:
      if (v.IsBuffer()) return "Buffer of " + std::to_string(v.As<Napi::Buffer<uint8_t>>().Length()) + " bytes";
      if (v.IsTypedArray()) return "TypedArray";
      if (v.IsArray()) return "array";
      return "object";
    default:
      return "unknown value";
  }
}

void ThrowArgError(Napi::Env env, const std::string& what, const std::string& expected, Napi::Value received) {
  Napi::TypeError::New(env, what + ": expected " + expected + ", received " + Describe(received))
      .ThrowAsJavaScriptException();
}

static bool IntegerIn(Napi::Value v, double lo, double hi, double* out) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || d < lo || d > hi) return false;
  *out = d;
  return true;
}

bool ArgU32(Napi::Env env, Napi::Value v, const std::string& what, uint32_t* out) {
  double d;
  if (!IntegerIn(v, 0, 4294967295.0, &d)) {
    ThrowArgError(env, what, "an integer from 0 to 4294967295", v);
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

bool ArgU64(Napi::Env env, Napi::Value v, const std::string& what, uint64_t* out) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) {
      ThrowArgError(env, what, "a non-negative integer below 2^64", v);
      return false;
    }
    *out = x;
    return true;
  }
  double d;
  if (!IntegerIn(v, 0, 9007199254740991.0, &d)) {
    ThrowArgError(env, what, "a non-negative safe integer or bigint", v);
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool ArgFd(Napi::Env env, Napi::Value v, const std::string& what, int* out) {
  double d;
  if (!IntegerIn(v, 0, 2147483647.0, &d)) {
    ThrowArgError(env, what, "a file descriptor (integer >= 0)", v);
    return false;
  }
  *out = static_cast<int>(d);
  return true;
}

bool ArgString(Napi::Env env, Napi::Value v, const std::string& what, std::string* out) {
  if (!v.IsString()) {
    ThrowArgError(env, what, "a string", v);
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowArgError(env, what, "a string without NUL characters", v);
    return false;
  }
  return true;
}

bool ArgBuffer(Napi::Env env, Napi::Value v, const std::string& what, Napi::Buffer<uint8_t>* out) {
  if (!v.IsBuffer()) {
    ThrowArgError(env, what, "a Buffer", v);
    return false;
  }
  *out = v.As<Napi::Buffer<uint8_t>>();
  return true;
}

bool ArgBufferMin(Napi::Env env, Napi::Value v, const std::string& what, size_t min, Napi::Buffer<uint8_t>* out) {
  if (!v.IsBuffer() || v.As<Napi::Buffer<uint8_t>>().Length() < min) {
    ThrowArgError(env, what, "a Buffer of at least " + std::to_string(min) + " bytes", v);
    return false;
  }
  *out = v.As<Napi::Buffer<uint8_t>>();
  return true;
}

bool ArgObject(Napi::Env env, Napi::Value v, const std::string& what, Napi::Object* out) {
  if (!v.IsObject() || v.IsArray() || v.IsBuffer() || v.IsFunction()) {
    ThrowArgError(env, what, "an options object", v);
    return false;
  }
  *out = v.As<Napi::Object>();
  return true;
}

void ExportFunctions(Napi::Env env, Napi::Object exports, std::initializer_list<ExportedFunction> fns) {
  for (const ExportedFunction& f : fns) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
}

}  // namespace xd
