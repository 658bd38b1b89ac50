// addon.cc: addon entry point, per-environment state and libbpf log capture.
#include "addon.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "module.h"
#include "util.h"

namespace xd {

static thread_local std::string* tl_capture = nullptr;
static bool g_debug = false;

static int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (tl_capture == nullptr) {
    if (g_debug) vfprintf(stderr, fmt, ap);
    return 0;
  }
  if (level == LIBBPF_DEBUG && !g_debug) return 0;
  va_list ap2;
  va_copy(ap2, ap);
  char small[512];
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  if (n < 0) {
    va_end(ap2);
    return 0;
  }
  if (static_cast<size_t>(n) < sizeof(small)) {
    tl_capture->append(small, n);
  } else {
    std::string big(static_cast<size_t>(n) + 1, '\0');
    vsnprintf(&big[0], big.size(), fmt, ap2);
    big.resize(n);
    tl_capture->append(big);
  }
  va_end(ap2);
  return 0;
}

LibbpfLogCapture::LibbpfLogCapture() : prev_(tl_capture) { tl_capture = &text_; }
LibbpfLogCapture::~LibbpfLogCapture() { tl_capture = prev_; }

std::string LibbpfLogCapture::VerifierLog() const {
  static const char kBegin[] = "-- BEGIN PROG LOAD LOG --\n";
  static const char kEnd[] = "-- END PROG LOAD LOG --";
  size_t b = text_.find(kBegin);
  if (b == std::string::npos) return "";
  b += sizeof(kBegin) - 1;
  size_t e = text_.find(kEnd, b);
  if (e == std::string::npos) e = text_.size();
  return text_.substr(b, e - b);
}

void AttachLibbpfLog(Napi::Env env, Napi::Error& err, const std::string& log, const std::string& verifier_log) {
  Napi::Object o = err.Value();
  o.Set("libbpfLog", Napi::String::New(env, log));
  if (!verifier_log.empty()) o.Set("verifierLog", Napi::String::New(env, verifier_log));
}

XdAddon::XdAddon(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* d = getenv("XD_LIBBPF_DEBUG");
    g_debug = d != nullptr && d[0] == '1';
    libbpf_set_print(LibbpfPrint);
    // libbpf 1.x strict mode is the default: functions return -errno and set errno.
  });
  for (ModuleInit fn : ModuleRegistry()) {
    fn(env, exports);
    if (env.IsExceptionPending()) return;
  }
}

XdAddon::~XdAddon() {
  // Environment teardown: close what JS forgot to close. Loaded programs stay
  // attached to interfaces (XDP attach holds its own reference) and pinned
  // objects stay pinned; only this process's fds go away.
  for (auto& kv : objects_) {
    if (!kv.second.busy) bpf_object__close(kv.second.obj);
  }
  objects_.clear();
}

ObjectEntry* XdAddon::GetObject(Napi::Env env, Napi::Value handle) {
  uint32_t h;
  if (!ArgU32(env, handle, "object handle", &h)) return nullptr;
  auto it = objects_.find(h);
  if (it == objects_.end()) {
    Napi::Error::New(env, "BPF object handle " + std::to_string(h) + " is closed or was never opened")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  if (it->second.busy) {
    Napi::Error::New(env, "BPF object " + it->second.path + " is being loaded; wait for load() to settle")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  return &it->second;
}

uint32_t XdAddon::AddObject(struct bpf_object* obj, const std::string& path) {
  uint32_t h = next_handle_++;
  ObjectEntry e;
  e.obj = obj;
  e.path = path;
  objects_.emplace(h, e);
  return h;
}

void XdAddon::RemoveObject(uint32_t handle) { objects_.erase(handle); }

}  // namespace xd

using XdAddonEntry = xd::XdAddon;
NODE_API_ADDON(XdAddonEntry)
