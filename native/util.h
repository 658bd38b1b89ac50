// util.h: error and argument helpers shared by every native/*.cc file.
//
// Errors follow Node's SystemError shape: message "<syscall>: <strerror>",
// `errno` (negative, as Node reports it: -1 for EPERM), `code` ('EPERM') and
// `syscall`. Argument errors are TypeErrors that say what was expected and
// what was received. All helpers work with NAPI_DISABLE_CPP_EXCEPTIONS: the
// Arg* functions throw a pending JS exception and return false; callers then
// return immediately.
#ifndef XD_NATIVE_UTIL_H
#define XD_NATIVE_UTIL_H

#include <napi.h>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace xd {

// Name of a positive errno value ("EPERM"), or "E<number>" if unknown.
std::string ErrnoName(int err);

// Builds (does not throw) an Error shaped like Node's SystemError.
// `err` is a positive errno value.
Napi::Error SystemError(Napi::Env env, int err, const std::string& syscall);

// Throws SystemError(env, err, syscall) as a pending exception.
void ThrowSystemError(Napi::Env env, int err, const std::string& syscall);

// Throws a TypeError "<what>: expected <expected>, received <Describe(v)>".
void ThrowArgError(Napi::Env env, const std::string& what, const std::string& expected, Napi::Value received);

// Short description of a JS value for error messages: 'string "abc"',
// 'number 1.5', 'undefined', 'Buffer of 3 bytes', 'object'.
std::string Describe(Napi::Value v);

// Argument readers: return false with a pending TypeError when the argument is
// missing or of the wrong type/range. `what` names the argument in messages.
bool ArgU32(Napi::Env env, Napi::Value v, const std::string& what, uint32_t* out);
bool ArgU64(Napi::Env env, Napi::Value v, const std::string& what, uint64_t* out);
bool ArgFd(Napi::Env env, Napi::Value v, const std::string& what, int* out);
bool ArgString(Napi::Env env, Napi::Value v, const std::string& what, std::string* out);
bool ArgBuffer(Napi::Env env, Napi::Value v, const std::string& what, Napi::Buffer<uint8_t>* out);
// As ArgBuffer, but also requires at least `min` bytes.
bool ArgBufferMin(Napi::Env env, Napi::Value v, const std::string& what, size_t min, Napi::Buffer<uint8_t>* out);
bool ArgObject(Napi::Env env, Napi::Value v, const std::string& what, Napi::Object* out);

// One exported function of a module: its JS name and its callback.
struct ExportedFunction {
  const char* name;
  Napi::Function::Callback fn;
};

// Sets every function on `exports` under its name (the module Init tables).
void ExportFunctions(Napi::Env env, Napi::Object exports, std::initializer_list<ExportedFunction> fns);

// Queues an AsyncWorker that settles its own Promise::Deferred and returns that promise.
template <typename Worker>
Napi::Value QueueForPromise(Worker* w) {
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// True if v is undefined or null (optional argument left out).
inline bool IsAbsent(Napi::Value v) { return v.IsUndefined() || v.IsNull(); }

}  // namespace xd

#endif  // XD_NATIVE_UTIL_H
