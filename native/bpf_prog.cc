// bpf_prog.cc: fds, pinning, object info, XDP attach/detach/query and
// BPF_PROG_TEST_RUN.
//
// JS API:
//   objPin(fd, path)                 objGet(path) -> fd          close(fd)
//   mapInfo(fd) -> {id, name, type, typeName, keySize, valueSize, maxEntries, flags}
//   progInfo(fd) -> {id, name, type, typeName, tag, runTimeNs, runCnt, recursionMisses}
//                                    (the last three: bigint, the kernel's bpf_stats; they only
//                                    grow while kernel.bpf_stats_enabled is 1)
//   mapFdById(id) -> fd              progFdById(id) -> fd
//   ifNameToIndex(name) -> ifindex   (in the calling thread's network namespace)
//   xdpAttach(ifindex, progFd, flags, expectedFd?)   (expectedFd: XDP_FLAGS_REPLACE semantics)
//   xdpDetach(ifindex, flags, expectedFd?)
//   xdpQuery(ifindex, flags = 0) -> {attachMode, progId, drvProgId, skbProgId, hwProgId}
//   progTestRun(fd, opts) -> {retval, duration, dataOut?, ctxOut?}
//   progTestRunAsync(fd, opts) -> Promise<same>
//   enableRunTimeStats() -> fd      (BPF_ENABLE_STATS, BPF_STATS_RUN_TIME: the kernel counts
//                                    run_time_ns/run_cnt of every program while the fd is open)
//   constants: {XDP_FLAGS_*, BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK,
//               BPF_F_TEST_XDP_LIVE_FRAMES, BPF_F_TEST_RUN_ON_CPU, XDP_* verdicts}
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "module.h"
#include "util.h"

namespace xd {

static Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  std::string path;
  if (!ArgFd(env, info[0], "fd", &fd) || !ArgString(env, info[1], "pin path", &path)) return env.Undefined();
  if (bpf_obj_pin(fd, path.c_str()) != 0) {
    Napi::Error e = SystemError(env, errno, "bpf_obj_pin");
    e.Value().Set("path", Napi::String::New(env, path));
    e.ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

static Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgString(env, info[0], "pin path", &path)) return env.Undefined();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    Napi::Error e = SystemError(env, errno, "bpf_obj_get");
    e.Value().Set("path", Napi::String::New(env, path));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(env, info[0], "fd", &fd)) return env.Undefined();
  if (close(fd) != 0) ThrowSystemError(env, errno, "close");
  return env.Undefined();
}

static Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(env, info[0], "map fd", &fd)) return env.Undefined();
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) {
    ThrowSystemError(env, errno, "bpf_obj_get_info_by_fd");
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, mi.id));
  o.Set("name", Napi::String::New(env, mi.name));
  o.Set("type", Napi::Number::New(env, mi.type));
  const char* tn = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(mi.type));
  o.Set("typeName", tn ? tn : "unknown");
  o.Set("keySize", Napi::Number::New(env, mi.key_size));
  o.Set("valueSize", Napi::Number::New(env, mi.value_size));
  o.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  o.Set("flags", Napi::Number::New(env, mi.map_flags));
  return o;
}

static Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(env, info[0], "program fd", &fd)) return env.Undefined();
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) != 0) {
    ThrowSystemError(env, errno, "bpf_obj_get_info_by_fd");
    return env.Undefined();
  }
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, pi.id));
  o.Set("name", Napi::String::New(env, pi.name));
  o.Set("type", Napi::Number::New(env, pi.type));
  const char* tn = libbpf_bpf_prog_type_str(static_cast<enum bpf_prog_type>(pi.type));
  o.Set("typeName", tn ? tn : "unknown");
  o.Set("tag", Napi::String::New(env, tag));
  o.Set("runTimeNs", Napi::BigInt::New(env, static_cast<uint64_t>(pi.run_time_ns)));
  o.Set("runCnt", Napi::BigInt::New(env, static_cast<uint64_t>(pi.run_cnt)));
  o.Set("recursionMisses", Napi::BigInt::New(env, static_cast<uint64_t>(pi.recursion_misses)));
  // The verifier's processed-instruction count (kernel >= 5.16; 0 before).
  o.Set("verifiedInsns", Napi::Number::New(env, pi.verified_insns));
  return o;
}

static Napi::Value MapFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  if (!ArgU32(env, info[0], "map id", &id)) return env.Undefined();
  int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) {
    ThrowSystemError(env, errno, "bpf_map_get_fd_by_id");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

static Napi::Value ProgFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  if (!ArgU32(env, info[0], "program id", &id)) return env.Undefined();
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) {
    ThrowSystemError(env, errno, "bpf_prog_get_fd_by_id");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

static Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ArgString(env, info[0], "interface name", &name)) return env.Undefined();
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) {
    Napi::Error e = SystemError(env, errno, "if_nametoindex");
    e.Value().Set("interface", Napi::String::New(env, name));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, idx);
}

static Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex, flags;
  int prog_fd, old_fd = -1;
  if (!ArgU32(env, info[0], "ifindex", &ifindex) || !ArgFd(env, info[1], "program fd", &prog_fd) ||
      !ArgU32(env, info[2], "XDP flags", &flags))
    return env.Undefined();
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  if (!IsAbsent(info[3])) {
    if (!ArgFd(env, info[3], "expected attached program fd", &old_fd)) return env.Undefined();
    opts.old_prog_fd = old_fd;
    flags |= XDP_FLAGS_REPLACE;
  }
  int err = bpf_xdp_attach(static_cast<int>(ifindex), prog_fd, flags, &opts);
  if (err) ThrowSystemError(env, -err, "bpf_xdp_attach");
  return env.Undefined();
}

static Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex, flags;
  int old_fd;
  if (!ArgU32(env, info[0], "ifindex", &ifindex) || !ArgU32(env, info[1], "XDP flags", &flags)) return env.Undefined();
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  if (!IsAbsent(info[2])) {
    if (!ArgFd(env, info[2], "expected attached program fd", &old_fd)) return env.Undefined();
    opts.old_prog_fd = old_fd;
    flags |= XDP_FLAGS_REPLACE;
  }
  int err = bpf_xdp_detach(static_cast<int>(ifindex), flags, &opts);
  if (err) ThrowSystemError(env, -err, "bpf_xdp_detach");
  return env.Undefined();
}

static Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex, flags = 0;
  if (!ArgU32(env, info[0], "ifindex", &ifindex)) return env.Undefined();
  if (!IsAbsent(info[1]) && !ArgU32(env, info[1], "XDP flags", &flags)) return env.Undefined();
  LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  int err = bpf_xdp_query(static_cast<int>(ifindex), static_cast<int>(flags), &opts);
  if (err) {
    ThrowSystemError(env, -err, "bpf_xdp_query");
    return env.Undefined();
  }
  const char* mode = "none";
  switch (opts.attach_mode) {
    case XDP_ATTACHED_DRV:
      mode = "native";
      break;
    case XDP_ATTACHED_SKB:
      mode = "generic";
      break;
    case XDP_ATTACHED_HW:
      mode = "offload";
      break;
    case XDP_ATTACHED_MULTI:
      mode = "multi";
      break;
    default:
      break;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("attachMode", mode);
  o.Set("progId", Napi::Number::New(env, opts.prog_id));
  o.Set("drvProgId", Napi::Number::New(env, opts.drv_prog_id));
  o.Set("skbProgId", Napi::Number::New(env, opts.skb_prog_id));
  o.Set("hwProgId", Napi::Number::New(env, opts.hw_prog_id));
  return o;
}

// ---- BPF_PROG_TEST_RUN -------------------------------------------------

struct TestRunArgs {
  int fd = -1;
  std::vector<uint8_t> data_in, ctx_in;
  uint32_t data_size_out = 0, ctx_size_out = 0, repeat = 0, flags = 0, cpu = 0, batch_size = 0;
  bool has_ctx = false;
  // results
  int err = 0;
  std::vector<uint8_t> data_out, ctx_out;
  uint32_t retval = 0, duration = 0;
};

static bool OptU32(Napi::Env env, Napi::Object o, const char* key, uint32_t* out) {
  Napi::Value v = o.Get(key);
  if (IsAbsent(v)) return true;
  return ArgU32(env, v, std::string("test run options.") + key, out);
}

static bool ReadTestRunArgs(const Napi::CallbackInfo& info, TestRunArgs* a) {
  Napi::Env env = info.Env();
  Napi::Object o;
  if (!ArgFd(env, info[0], "program fd", &a->fd) || !ArgObject(env, info[1], "test run options", &o)) return false;
  Napi::Value d = o.Get("data");
  if (!IsAbsent(d)) {
    Napi::Buffer<uint8_t> b;
    if (!ArgBuffer(env, d, "test run options.data", &b)) return false;
    a->data_in.assign(b.Data(), b.Data() + b.Length());
  }
  Napi::Value c = o.Get("ctx");
  if (!IsAbsent(c)) {
    Napi::Buffer<uint8_t> b;
    if (!ArgBuffer(env, c, "test run options.ctx", &b)) return false;
    a->ctx_in.assign(b.Data(), b.Data() + b.Length());
    a->has_ctx = true;
  }
  a->data_size_out = static_cast<uint32_t>(a->data_in.size()) + 256;  // XDP may grow the head/tail
  if (!OptU32(env, o, "dataSizeOut", &a->data_size_out) || !OptU32(env, o, "ctxSizeOut", &a->ctx_size_out) ||
      !OptU32(env, o, "repeat", &a->repeat) || !OptU32(env, o, "flags", &a->flags) || !OptU32(env, o, "cpu", &a->cpu) ||
      !OptU32(env, o, "batchSize", &a->batch_size))
    return false;
  if (a->has_ctx && a->ctx_size_out == 0) a->ctx_size_out = static_cast<uint32_t>(a->ctx_in.size());
  return true;
}

static void DoTestRun(TestRunArgs* a) {
  a->data_out.assign(a->data_size_out, 0);
  a->ctx_out.assign(a->ctx_size_out, 0);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = a->data_in.empty() ? nullptr : a->data_in.data();
  opts.data_size_in = static_cast<uint32_t>(a->data_in.size());
  // Live-frames mode forbids data_out (the frames are transmitted, not copied back).
  bool live = (a->flags & BPF_F_TEST_XDP_LIVE_FRAMES) != 0;
  if (!live && a->data_size_out > 0) {
    opts.data_out = a->data_out.data();
    opts.data_size_out = a->data_size_out;
  }
  if (a->has_ctx) {
    opts.ctx_in = a->ctx_in.data();
    opts.ctx_size_in = static_cast<uint32_t>(a->ctx_in.size());
    if (a->ctx_size_out > 0 && !live) {
      opts.ctx_out = a->ctx_out.data();
      opts.ctx_size_out = a->ctx_size_out;
    }
  }
  opts.repeat = a->repeat;
  opts.flags = a->flags;
  opts.cpu = a->cpu;
  opts.batch_size = a->batch_size;
  int err = bpf_prog_test_run_opts(a->fd, &opts);
  a->err = err;
  if (err) return;
  a->retval = opts.retval;
  a->duration = opts.duration;
  a->data_out.resize(opts.data_out ? opts.data_size_out : 0);
  a->ctx_out.resize(opts.ctx_out ? opts.ctx_size_out : 0);
}

static Napi::Value TestRunResult(Napi::Env env, const TestRunArgs& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("retval", Napi::Number::New(env, a.retval));
  o.Set("duration", Napi::Number::New(env, a.duration));
  o.Set("dataOut", Napi::Buffer<uint8_t>::Copy(env, a.data_out.data(), a.data_out.size()));
  if (a.has_ctx) o.Set("ctxOut", Napi::Buffer<uint8_t>::Copy(env, a.ctx_out.data(), a.ctx_out.size()));
  return o;
}

static Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TestRunArgs a;
  if (!ReadTestRunArgs(info, &a)) return env.Undefined();
  DoTestRun(&a);
  if (a.err) {
    ThrowSystemError(env, -a.err, "bpf_prog_test_run_opts");
    return env.Undefined();
  }
  return TestRunResult(env, a);
}

class TestRunWorker : public Napi::AsyncWorker {
 public:
  TestRunWorker(Napi::Env env, TestRunArgs&& a)
      : Napi::AsyncWorker(env, "xdirector:bpf_prog_test_run"),
        a_(std::move(a)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { DoTestRun(&a_); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (a_.err)
      deferred_.Reject(SystemError(env, -a_.err, "bpf_prog_test_run_opts").Value());
    else
      deferred_.Resolve(TestRunResult(env, a_));
  }

 private:
  TestRunArgs a_;
  Napi::Promise::Deferred deferred_;
};

static Napi::Value ProgTestRunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TestRunArgs a;
  if (!ReadTestRunArgs(info, &a)) return env.Undefined();
  TestRunWorker* w = new TestRunWorker(env, std::move(a));
  return QueueForPromise(w);
}

static Napi::Value EnableRunTimeStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) {
    ThrowSystemError(env, errno, "bpf_enable_stats(BPF_STATS_RUN_TIME)");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

static void Init(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports,
                  {
                      {"objPin", ObjPin},
                      {"objGet", ObjGet},
                      {"close", CloseFd},
                      {"mapInfo", MapInfo},
                      {"progInfo", ProgInfo},
                      {"mapFdById", MapFdById},
                      {"progFdById", ProgFdById},
                      {"ifNameToIndex", IfNameToIndex},
                      {"xdpAttach", XdpAttach},
                      {"xdpDetach", XdpDetach},
                      {"xdpQuery", XdpQuery},
                      {"progTestRun", ProgTestRun},
                      {"progTestRunAsync", ProgTestRunAsync},
                      {"enableRunTimeStats", EnableRunTimeStats},
                  });

  Napi::Object c = Napi::Object::New(env);
  c.Set("XDP_FLAGS_UPDATE_IF_NOEXIST", Napi::Number::New(env, XDP_FLAGS_UPDATE_IF_NOEXIST));
  c.Set("XDP_FLAGS_SKB_MODE", Napi::Number::New(env, XDP_FLAGS_SKB_MODE));
  c.Set("XDP_FLAGS_DRV_MODE", Napi::Number::New(env, XDP_FLAGS_DRV_MODE));
  c.Set("XDP_FLAGS_HW_MODE", Napi::Number::New(env, XDP_FLAGS_HW_MODE));
  c.Set("XDP_FLAGS_REPLACE", Napi::Number::New(env, XDP_FLAGS_REPLACE));
  c.Set("BPF_ANY", Napi::Number::New(env, BPF_ANY));
  c.Set("BPF_NOEXIST", Napi::Number::New(env, BPF_NOEXIST));
  c.Set("BPF_EXIST", Napi::Number::New(env, BPF_EXIST));
  c.Set("BPF_F_LOCK", Napi::Number::New(env, BPF_F_LOCK));
  c.Set("BPF_F_TEST_RUN_ON_CPU", Napi::Number::New(env, BPF_F_TEST_RUN_ON_CPU));
  c.Set("BPF_F_TEST_XDP_LIVE_FRAMES", Napi::Number::New(env, BPF_F_TEST_XDP_LIVE_FRAMES));
  c.Set("XDP_ABORTED", Napi::Number::New(env, XDP_ABORTED));
  c.Set("XDP_DROP", Napi::Number::New(env, XDP_DROP));
  c.Set("XDP_PASS", Napi::Number::New(env, XDP_PASS));
  c.Set("XDP_TX", Napi::Number::New(env, XDP_TX));
  c.Set("XDP_REDIRECT", Napi::Number::New(env, XDP_REDIRECT));
  exports.Set("constants", c);
}

XD_REGISTER_MODULE(Init);

}  // namespace xd
