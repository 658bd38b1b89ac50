// addon.h: per-environment state of the xdirector addon (Napi::Addon<T>).
//
// The addon is thin and knows nothing about xdirector's layouts: it opens and
// loads BPF objects, pins, attaches and runs programs, and moves Buffers in
// and out of maps. Policy and validation of meaning live in src/bpf/*.ts.
#ifndef XD_NATIVE_ADDON_H
#define XD_NATIVE_ADDON_H

#include <napi.h>

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>

struct bpf_object;

namespace xd {

// An opened (and possibly loaded) bpf_object, referred to from JS by a
// numeric handle. `busy` is set while a load runs on a worker thread: every
// other operation on the object is refused until it settles.
struct ObjectEntry {
  struct bpf_object* obj = nullptr;
  std::string path;
  bool busy = false;
  bool loaded = false;
  // Per program name, the buffer the kernel writes its verifier log into
  // (open option verifierStats); libbpf holds pointers to their bytes, so
  // they are never resized once set up.
  std::map<std::string, std::string> prog_logs;
};

class XdAddon : public Napi::Addon<XdAddon> {
 public:
  XdAddon(Napi::Env env, Napi::Object exports);
  ~XdAddon();

  // Looks up a handle; throws a TypeError/Error and returns nullptr when it is
  // not a live handle or the object is busy loading.
  ObjectEntry* GetObject(Napi::Env env, Napi::Value handle);
  // Looks up a handle without checks (nullptr if closed); for workers.
  ObjectEntry* Find(uint32_t handle) {
    auto it = objects_.find(handle);
    return it == objects_.end() ? nullptr : &it->second;
  }
  uint32_t AddObject(struct bpf_object* obj, const std::string& path);
  void RemoveObject(uint32_t handle);

 private:
  std::unordered_map<uint32_t, ObjectEntry> objects_;
  uint32_t next_handle_ = 1;
};

// Captures libbpf's log output on the current thread while alive.
// libbpf's print callback is process-global; the capture is thread-local so a
// load on a worker thread collects only its own messages. Without a capture,
// libbpf messages are dropped unless XD_LIBBPF_DEBUG=1 is set in the
// environment (then they go to stderr).
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  const std::string& text() const { return text_; }
  // The verifier log libbpf printed between "-- BEGIN PROG LOAD LOG --" and
  // "-- END PROG LOAD LOG --" (empty if none).
  std::string VerifierLog() const;

 private:
  std::string text_;
  std::string* prev_;
};

// Attaches `libbpfLog` (and `verifierLog` when present) to an error object.
void AttachLibbpfLog(Napi::Env env, Napi::Error& err, const std::string& log, const std::string& verifier_log);

}  // namespace xd

#endif  // XD_NATIVE_ADDON_H
