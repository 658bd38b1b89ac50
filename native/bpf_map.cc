// bpf_map.cc: map operations on Buffers, by map fd.
//
// The addon knows no layouts, but it never lets the kernel write past a
// Buffer: every operation first reads the map's key/value size from the
// kernel (BPF_OBJ_GET_INFO_BY_FD) and checks the Buffers against it. For
// per-CPU maps a value is round_up(value_size, 8) * possible CPUs bytes.
//
// JS API:
//   mapLookup(fd, key, valueOut, flags = 0) -> boolean (false: no such key)
//   mapUpdate(fd, key, value, flags = 0)
//   mapDelete(fd, key) -> boolean (false: no such key)
//   mapGetNextKey(fd, key | null, nextKeyOut) -> boolean (false: no more keys)
//   mapLookupBatch(fd, inBatch | null, outBatch, keysOut, valuesOut, count) -> {count, done}
//   mapUpdateBatch(fd, keys, values, count, elemFlags = 0) -> count
//   mapUpdateBatchAsync(fd, keys, values, count, elemFlags = 0) -> Promise<count>
//   mapDeleteBatch(fd, keys, count) -> count
//   mapLookupFirst(fds, keys, count, valuesOut, foundOut) -> keys found
//     for each of `count` keys, the first of the maps `fds` (same key size, not per-CPU)
//     that holds it: foundOut[i] = its position in fds + 1 (0: in none), its value at
//     valuesOut[i * stride] (stride: the largest value size of the maps). One call for
//     what would be count * fds.length lookups from JS, each with its own geometry read.
//   mapValueSize(fd) -> bytes of one value as seen from user space (per-CPU aware)
//   numPossibleCpus() -> number
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "module.h"
#include "util.h"

namespace xd {

struct MapGeom {
  uint32_t type, key_size, value_size, max_entries;
  size_t user_value_size;  // per-CPU aware
};

static bool IsPerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

static int PossibleCpus() {
  static int n = 0;
  if (n <= 0) n = libbpf_num_possible_cpus();
  return n;
}

static bool GetGeom(Napi::Env env, int fd, MapGeom* g) {
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) {
    ThrowSystemError(env, errno, "bpf_obj_get_info_by_fd");
    return false;
  }
  g->type = mi.type;
  g->key_size = mi.key_size;
  g->value_size = mi.value_size;
  g->max_entries = mi.max_entries;
  g->user_value_size = mi.value_size;
  if (IsPerCpu(mi.type)) {
    int ncpus = PossibleCpus();
    if (ncpus <= 0) {
      ThrowSystemError(env, -ncpus, "libbpf_num_possible_cpus");
      return false;
    }
    g->user_value_size = ((static_cast<size_t>(mi.value_size) + 7) / 8) * 8 * ncpus;
  }
  return true;
}

static Napi::Value MapValueSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  MapGeom g;
  if (!ArgFd(env, info[0], "map fd", &fd) || !GetGeom(env, fd, &g)) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(g.user_value_size));
}

static Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int n = PossibleCpus();
  if (n <= 0) {
    ThrowSystemError(env, -n, "libbpf_num_possible_cpus");
    return env.Undefined();
  }
  return Napi::Number::New(env, n);
}

static bool OptFlags(Napi::Env env, Napi::Value v, const char* what, uint64_t* out) {
  *out = 0;
  if (IsAbsent(v)) return true;
  return ArgU64(env, v, what, out);
}

// Reads the map fd (argument 0), its geometry and the key (argument 1, at least key_size bytes).
static bool ArgMapKey(Napi::Env env, const Napi::CallbackInfo& info, int* fd, MapGeom* g, Napi::Buffer<uint8_t>* key) {
  return ArgFd(env, info[0], "map fd", fd) && GetGeom(env, *fd, g) &&
         ArgBufferMin(env, info[1], "key", g->key_size, key);
}

// An element operation's result: true, false for ENOENT (no such key), or a pending SystemError.
static Napi::Value FoundOrThrow(Napi::Env env, int err, const char* syscall) {
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  if (err) {
    ThrowSystemError(env, -err, syscall);
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// Arguments of a single-element lookup or update: map fd, key, value buffer, optional flags.
struct ElemArgs {
  int fd;
  MapGeom g;
  Napi::Buffer<uint8_t> key, val;
  uint64_t flags;
};

static bool ArgElem(Napi::Env env, const Napi::CallbackInfo& info, const char* value_what, const char* flags_what,
                    ElemArgs* a) {
  return ArgMapKey(env, info, &a->fd, &a->g, &a->key) &&
         ArgBufferMin(env, info[2], value_what, a->g.user_value_size, &a->val) &&
         OptFlags(env, info[3], flags_what, &a->flags);
}

static Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ElemArgs a;
  if (!ArgElem(env, info, "value output", "lookup flags", &a)) return env.Undefined();
  return FoundOrThrow(env, bpf_map_lookup_elem_flags(a.fd, a.key.Data(), a.val.Data(), a.flags), "bpf_map_lookup_elem");
}

static Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ElemArgs a;
  if (!ArgElem(env, info, "value", "update flags", &a)) return env.Undefined();
  int err = bpf_map_update_elem(a.fd, a.key.Data(), a.val.Data(), a.flags);
  if (err) ThrowSystemError(env, -err, "bpf_map_update_elem");
  return env.Undefined();
}

static Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  MapGeom g;
  Napi::Buffer<uint8_t> key;
  if (!ArgMapKey(env, info, &fd, &g, &key)) return env.Undefined();
  return FoundOrThrow(env, bpf_map_delete_elem(fd, key.Data()), "bpf_map_delete_elem");
}

static Napi::Value MapGetNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  MapGeom g;
  Napi::Buffer<uint8_t> key, next;
  if (!ArgFd(env, info[0], "map fd", &fd) || !GetGeom(env, fd, &g)) return env.Undefined();
  const void* kp = nullptr;
  if (!IsAbsent(info[1])) {
    if (!ArgBufferMin(env, info[1], "key", g.key_size, &key)) return env.Undefined();
    kp = key.Data();
  }
  if (!ArgBufferMin(env, info[2], "next key output", g.key_size, &next)) return env.Undefined();
  int err = bpf_map_get_next_key(fd, kp, next.Data());
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  if (err) {
    ThrowSystemError(env, -err, "bpf_map_get_next_key");
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// The batch cursor is opaque: the kernel copies a u32 bucket index for hash
// maps and key_size bytes for array-like maps, so require max(key_size, 4).
static size_t BatchTokenSize(const MapGeom& g) { return g.key_size > 4 ? g.key_size : 4; }

static Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  MapGeom g;
  uint32_t count;
  Napi::Buffer<uint8_t> in, out, keys, vals;
  if (!ArgFd(env, info[0], "map fd", &fd) || !GetGeom(env, fd, &g)) return env.Undefined();
  size_t tok = BatchTokenSize(g);
  void* inp = nullptr;
  if (!IsAbsent(info[1])) {
    if (!ArgBufferMin(env, info[1], "in batch cursor", tok, &in)) return env.Undefined();
    inp = in.Data();
  }
  if (!ArgBufferMin(env, info[2], "out batch cursor", tok, &out)) return env.Undefined();
  if (!ArgU32(env, info[5], "batch count", &count)) return env.Undefined();
  if (count == 0) {
    ThrowArgError(env, "batch count", "an integer >= 1", info[5]);
    return env.Undefined();
  }
  if (!ArgBufferMin(env, info[3], "keys output", static_cast<size_t>(count) * g.key_size, &keys))
    return env.Undefined();
  if (!ArgBufferMin(env, info[4], "values output", static_cast<size_t>(count) * g.user_value_size, &vals))
    return env.Undefined();
  uint32_t n = count;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int err = bpf_map_lookup_batch(fd, inp, out.Data(), keys.Data(), vals.Data(), &n, &opts);
  bool done = false;
  if (err == -ENOENT) {
    done = true;  // end of map reached; n holds what this call returned
  } else if (err) {
    ThrowSystemError(env, -err, "bpf_map_lookup_batch");
    return env.Undefined();
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("count", Napi::Number::New(env, n));
  r.Set("done", Napi::Boolean::New(env, done));
  return r;
}

struct UpdateBatchArgs {
  int fd;
  uint32_t count;
  uint64_t elem_flags;
  Napi::Buffer<uint8_t> keys, vals;
};

static bool ReadUpdateBatchArgs(const Napi::CallbackInfo& info, UpdateBatchArgs* a) {
  Napi::Env env = info.Env();
  MapGeom g;
  if (!ArgFd(env, info[0], "map fd", &a->fd) || !GetGeom(env, a->fd, &g)) return false;
  if (!ArgU32(env, info[3], "batch count", &a->count)) return false;
  if (!ArgBufferMin(env, info[1], "keys", static_cast<size_t>(a->count) * g.key_size, &a->keys)) return false;
  if (!ArgBufferMin(env, info[2], "values", static_cast<size_t>(a->count) * g.user_value_size, &a->vals)) return false;
  return OptFlags(env, info[4], "element flags", &a->elem_flags);
}

static Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UpdateBatchArgs a;
  if (!ReadUpdateBatchArgs(info, &a)) return env.Undefined();
  if (a.count == 0) return Napi::Number::New(env, 0);
  uint32_t n = a.count;
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = a.elem_flags);
  int err = bpf_map_update_batch(a.fd, a.keys.Data(), a.vals.Data(), &n, &opts);
  if (err) {
    Napi::Error e = SystemError(env, -err, "bpf_map_update_batch");
    e.Value().Set("processed", Napi::Number::New(env, n));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, n);
}

// Large batches (a 65537-slot ring, thousands of flows) off the JS thread.
// The Buffers are held by references until the worker settles.
class UpdateBatchWorker : public Napi::AsyncWorker {
 public:
  UpdateBatchWorker(Napi::Env env, const UpdateBatchArgs& a)
      : Napi::AsyncWorker(env, "xdirector:bpf_map_update_batch"), a_(a), deferred_(Napi::Promise::Deferred::New(env)) {
    keys_ref_ = Napi::Persistent(a.keys);
    vals_ref_ = Napi::Persistent(a.vals);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    n_ = a_.count;
    if (n_ == 0) return;
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = a_.elem_flags);
    err_ = bpf_map_update_batch(a_.fd, keys_data_, vals_data_, &n_, &opts);
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (err_) {
      Napi::Error e = SystemError(env, -err_, "bpf_map_update_batch");
      e.Value().Set("processed", Napi::Number::New(env, n_));
      deferred_.Reject(e.Value());
    } else {
      deferred_.Resolve(Napi::Number::New(env, n_));
    }
  }
  void Prepare() {
    keys_data_ = a_.keys.Data();
    vals_data_ = a_.vals.Data();
  }

 private:
  UpdateBatchArgs a_;
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Buffer<uint8_t>> keys_ref_, vals_ref_;
  void* keys_data_ = nullptr;
  void* vals_data_ = nullptr;
  uint32_t n_ = 0;
  int err_ = 0;
};

static Napi::Value MapUpdateBatchAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UpdateBatchArgs a;
  if (!ReadUpdateBatchArgs(info, &a)) return env.Undefined();
  UpdateBatchWorker* w = new UpdateBatchWorker(env, a);
  w->Prepare();
  return QueueForPromise(w);
}

static Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  MapGeom g;
  uint32_t count;
  Napi::Buffer<uint8_t> keys;
  if (!ArgFd(env, info[0], "map fd", &fd) || !GetGeom(env, fd, &g)) return env.Undefined();
  if (!ArgU32(env, info[2], "batch count", &count)) return env.Undefined();
  if (!ArgBufferMin(env, info[1], "keys", static_cast<size_t>(count) * g.key_size, &keys)) return env.Undefined();
  if (count == 0) return Napi::Number::New(env, 0);
  uint32_t n = count;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int err = bpf_map_delete_batch(fd, keys.Data(), &n, &opts);
  if (err) {
    Napi::Error e = SystemError(env, -err, "bpf_map_delete_batch");
    e.Value().Set("processed", Napi::Number::New(env, n));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, n);
}

static Napi::Value MapLookupFirst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) {
    ThrowArgError(env, "map fds", "an array of 1 to 8 map fds", info[0]);
    return env.Undefined();
  }
  Napi::Array arr = info[0].As<Napi::Array>();
  uint32_t nfds = arr.Length();
  if (nfds < 1 || nfds > 8) {
    ThrowArgError(env, "map fds", "an array of 1 to 8 map fds", info[0]);
    return env.Undefined();
  }
  int fds[8];
  size_t stride = 0;
  uint32_t key_size = 0;
  for (uint32_t j = 0; j < nfds; j++) {
    MapGeom g;
    if (!ArgFd(env, arr.Get(j), "map fd", &fds[j]) || !GetGeom(env, fds[j], &g)) return env.Undefined();
    if (IsPerCpu(g.type)) {
      ThrowArgError(env, "map fds", "maps that are not per-CPU", arr.Get(j));
      return env.Undefined();
    }
    if (j > 0 && g.key_size != key_size) {
      ThrowArgError(env, "map fds", "maps of one key size (" + std::to_string(key_size) + " bytes)", arr.Get(j));
      return env.Undefined();
    }
    key_size = g.key_size;
    if (g.value_size > stride) stride = g.value_size;
  }
  uint32_t count;
  Napi::Buffer<uint8_t> keys, vals, found;
  if (!ArgU32(env, info[2], "key count", &count) ||
      !ArgBufferMin(env, info[1], "keys", static_cast<size_t>(count) * key_size, &keys) ||
      !ArgBufferMin(env, info[3], "values output", static_cast<size_t>(count) * stride, &vals) ||
      !ArgBufferMin(env, info[4], "found output", count, &found))
    return env.Undefined();
  uint32_t hits = 0;
  for (uint32_t i = 0; i < count; i++) {
    found.Data()[i] = 0;
    for (uint32_t j = 0; j < nfds; j++) {
      int err = bpf_map_lookup_elem(fds[j], keys.Data() + static_cast<size_t>(i) * key_size,
                                    vals.Data() + static_cast<size_t>(i) * stride);
      if (err == -ENOENT) continue;
      if (err) {
        ThrowSystemError(env, -err, "bpf_map_lookup_elem");
        return env.Undefined();
      }
      found.Data()[i] = static_cast<uint8_t>(j + 1);
      hits++;
      break;
    }
  }
  return Napi::Number::New(env, hits);
}

static void Init(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports,
                  {
                      {"mapLookup", MapLookup},
                      {"mapUpdate", MapUpdate},
                      {"mapDelete", MapDelete},
                      {"mapGetNextKey", MapGetNextKey},
                      {"mapLookupBatch", MapLookupBatch},
                      {"mapLookupFirst", MapLookupFirst},
                      {"mapUpdateBatch", MapUpdateBatch},
                      {"mapUpdateBatchAsync", MapUpdateBatchAsync},
                      {"mapDeleteBatch", MapDeleteBatch},
                      {"mapValueSize", MapValueSize},
                      {"numPossibleCpus", NumPossibleCpus},
                  });
}

XD_REGISTER_MODULE(Init);

}  // namespace xd
