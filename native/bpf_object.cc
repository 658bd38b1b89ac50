// bpf_object.cc: open / configure / load / close a BPF ELF object.
//
// JS API (all synchronous except objectLoad):
//   objectOpen(path, {pinRoot?, name?}?) -> handle
//   objectClose(handle)
//   objectMaps(handle) -> [{name, fd, type, typeName, keySize, valueSize, maxEntries, flags, internal}]
//   objectPrograms(handle) -> [{name, section, fd, type, typeName}]
//   objectGlobals(handle) -> [{name, section, offset, size}]
//   objectSetMaxEntries(handle, mapName, maxEntries)
//   objectSetGlobal(handle, varName, Buffer)          (exact size of the variable)
//   objectSetSectionData(handle, sectionName, Buffer) (e.g. '.rodata', exact size)
//   objectReuseMap(handle, mapName, fd)               (compatibility-checked)
//   objectLoad(handle) -> Promise<void>               (verification on a worker thread)
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "module.h"
#include "util.h"

namespace xd {

static XdAddon* Addon(Napi::Env env) { return env.GetInstanceData<XdAddon>(); }

static std::string MapNames(struct bpf_object* obj) {
  std::string names;
  struct bpf_map* m;
  bpf_object__for_each_map (m, obj) {
    if (!names.empty()) names += ", ";
    names += bpf_map__name(m);
  }
  return names.empty() ? "(none)" : names;
}

static struct bpf_map* FindMap(Napi::Env env, ObjectEntry* e, Napi::Value nameV, std::string* nameOut) {
  if (!ArgString(env, nameV, "map name", nameOut)) return nullptr;
  struct bpf_map* m = bpf_object__find_map_by_name(e->obj, nameOut->c_str());
  if (m == nullptr) {
    Napi::Error err = SystemError(env, ENOENT, "bpf_object__find_map_by_name");
    err.Value().Set("message", Napi::String::New(env, "no map named " + *nameOut + " in " + e->path +
                                                          " (maps: " + MapNames(e->obj) + ")"));
    err.ThrowAsJavaScriptException();
    return nullptr;
  }
  return m;
}

static bool RequireNotLoaded(Napi::Env env, ObjectEntry* e, const char* what) {
  if (e->loaded) {
    Napi::Error::New(env, std::string(what) + ": " + e->path +
                              " was already loaded (or a load was attempted); configure it before load()")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

static Napi::Value ObjectOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, pin_root, name;
  bool verifier_stats = false;
  if (!ArgString(env, info[0], "object path", &path)) return env.Undefined();
  LIBBPF_OPTS(bpf_object_open_opts, opts);
  if (!IsAbsent(info[1])) {
    Napi::Object o;
    if (!ArgObject(env, info[1], "open options", &o)) return env.Undefined();
    if (!IsAbsent(o.Get("pinRoot"))) {
      if (!ArgString(env, o.Get("pinRoot"), "open options.pinRoot", &pin_root)) return env.Undefined();
      opts.pin_root_path = pin_root.c_str();
    }
    if (!IsAbsent(o.Get("name"))) {
      if (!ArgString(env, o.Get("name"), "open options.name", &name)) return env.Undefined();
      opts.object_name = name.c_str();
    }
    if (!IsAbsent(o.Get("verifierStats"))) {
      if (!o.Get("verifierStats").IsBoolean()) {
        ThrowArgError(env, "open options.verifierStats", "a boolean", o.Get("verifierStats"));
        return env.Undefined();
      }
      verifier_stats = o.Get("verifierStats").As<Napi::Boolean>().Value();
    }
  }
  LibbpfLogCapture cap;
  struct bpf_object* obj = bpf_object__open_file(path.c_str(), &opts);
  if (obj == nullptr) {
    int err = errno;
    Napi::Error e = SystemError(env, err, "bpf_object__open_file");
    e.Value().Set("path", Napi::String::New(env, path));
    AttachLibbpfLog(env, e, cap.text(), "");
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t h = Addon(env)->AddObject(obj, path);
  if (verifier_stats) {
    // BPF_LOG_STATS (4) alone: the verifier's summary ("processed N insns",
    // "stack depth A+B+..." per subprogram), a few hundred bytes, at the cost
    // of a plain load; levels 1 and 2 trace every instruction (hundreds of MB).
    ObjectEntry* e = Addon(env)->Find(h);
    struct bpf_program* p;
    bpf_object__for_each_program (p, obj) {
      std::string& buf = e->prog_logs[bpf_program__name(p)];
      buf.assign(64 * 1024, '\0');
      bpf_program__set_log_buf(p, &buf[0], buf.size());
      bpf_program__set_log_level(p, 4);
    }
  }
  return Napi::Number::New(env, h);
}

static Napi::Value ObjectClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr) return env.Undefined();
  bpf_object__close(e->obj);
  Addon(env)->RemoveObject(info[0].As<Napi::Number>().Uint32Value());
  return env.Undefined();
}

static Napi::Value ObjectMaps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr) return env.Undefined();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  struct bpf_map* m;
  bpf_object__for_each_map (m, e->obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    o.Set("fd", Napi::Number::New(env, bpf_map__fd(m)));
    o.Set("type", Napi::Number::New(env, bpf_map__type(m)));
    const char* tn = libbpf_bpf_map_type_str(bpf_map__type(m));
    o.Set("typeName", tn ? tn : "unknown");
    o.Set("keySize", Napi::Number::New(env, bpf_map__key_size(m)));
    o.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(m)));
    o.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(m)));
    o.Set("flags", Napi::Number::New(env, bpf_map__map_flags(m)));
    o.Set("internal", Napi::Boolean::New(env, bpf_map__is_internal(m)));
    out.Set(i++, o);
  }
  return out;
}

static Napi::Value ObjectPrograms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr) return env.Undefined();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  struct bpf_program* p;
  bpf_object__for_each_program (p, e->obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    o.Set("fd", Napi::Number::New(env, bpf_program__fd(p)));
    o.Set("type", Napi::Number::New(env, bpf_program__type(p)));
    const char* tn = libbpf_bpf_prog_type_str(bpf_program__type(p));
    o.Set("typeName", tn ? tn : "unknown");
    auto log = e->prog_logs.find(bpf_program__name(p));
    if (log != e->prog_logs.end() && e->loaded) o.Set("verifierLog", std::string(log->second.c_str()));
    out.Set(i++, o);
  }
  return out;
}

struct GlobalVar {
  std::string name, section;
  uint32_t offset, size;
};

static std::vector<GlobalVar> ListGlobals(struct bpf_object* obj) {
  std::vector<GlobalVar> vars;
  struct btf* btf = bpf_object__btf(obj);
  if (btf == nullptr) return vars;
  uint32_t n = btf__type_cnt(btf);
  for (uint32_t id = 1; id < n; id++) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    if (!btf_is_datasec(t)) continue;
    const char* sec = btf__name_by_offset(btf, t->name_off);
    // Only data sections backed by internal maps (.rodata, .data, .bss, ...);
    // not the ".maps" definitions nor "license".
    if (sec == nullptr || sec[0] != '.' || strcmp(sec, ".maps") == 0) continue;
    const struct btf_var_secinfo* vsi = btf_var_secinfos(t);
    for (uint16_t k = 0; k < btf_vlen(t); k++, vsi++) {
      const struct btf_type* v = btf__type_by_id(btf, vsi->type);
      if (v == nullptr || !btf_is_var(v)) continue;
      vars.push_back({btf__name_by_offset(btf, v->name_off), sec, vsi->offset, vsi->size});
    }
  }
  return vars;
}

static Napi::Value ObjectGlobals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr) return env.Undefined();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const GlobalVar& g : ListGlobals(e->obj)) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", g.name);
    o.Set("section", g.section);
    o.Set("offset", Napi::Number::New(env, g.offset));
    o.Set("size", Napi::Number::New(env, g.size));
    out.Set(i++, o);
  }
  return out;
}

static Napi::Value ObjectSetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr || !RequireNotLoaded(env, e, "set max_entries")) return env.Undefined();
  std::string name;
  struct bpf_map* m = FindMap(env, e, info[1], &name);
  if (m == nullptr) return env.Undefined();
  uint32_t n;
  if (!ArgU32(env, info[2], "max_entries of " + name, &n)) return env.Undefined();
  if (n == 0) {
    ThrowArgError(env, "max_entries of " + name, "an integer from 1 to 4294967295", info[2]);
    return env.Undefined();
  }
  int err = bpf_map__set_max_entries(m, n);
  if (err) ThrowSystemError(env, -err, "bpf_map__set_max_entries");
  return env.Undefined();
}

static bool SectionPatch(Napi::Env env, ObjectEntry* e, const std::string& section, uint32_t offset,
                         const uint8_t* data, size_t len, bool whole) {
  struct bpf_map* m = bpf_object__find_map_by_name(e->obj, section.c_str());
  if (m == nullptr || !bpf_map__is_internal(m)) {
    Napi::Error err = SystemError(env, ENOENT, "bpf_object__find_map_by_name");
    err.Value().Set("message", Napi::String::New(env, "no data section " + section + " in " + e->path));
    err.ThrowAsJavaScriptException();
    return false;
  }
  size_t size = 0;
  const void* cur = bpf_map__initial_value(m, &size);
  if (cur == nullptr) {
    Napi::Error::New(env,
                     "section " + section + " of " + e->path + " has no initial data (.bss/.kconfig cannot be set)")
        .ThrowAsJavaScriptException();
    return false;
  }
  if (whole && len != size) {
    Napi::TypeError::New(env, "data for " + section + ": expected a Buffer of exactly " + std::to_string(size) +
                                  " bytes, received Buffer of " + std::to_string(len) + " bytes")
        .ThrowAsJavaScriptException();
    return false;
  }
  std::vector<uint8_t> copy(static_cast<const uint8_t*>(cur), static_cast<const uint8_t*>(cur) + size);
  memcpy(copy.data() + offset, data, len);
  int err = bpf_map__set_initial_value(m, copy.data(), copy.size());
  if (err) {
    ThrowSystemError(env, -err, "bpf_map__set_initial_value");
    return false;
  }
  return true;
}

static Napi::Value ObjectSetGlobal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr || !RequireNotLoaded(env, e, "set global")) return env.Undefined();
  std::string name;
  if (!ArgString(env, info[1], "global variable name", &name)) return env.Undefined();
  Napi::Buffer<uint8_t> buf;
  if (!ArgBuffer(env, info[2], "value of global " + name, &buf)) return env.Undefined();
  std::string names;
  for (const GlobalVar& g : ListGlobals(e->obj)) {
    if (g.name != name) {
      names += (names.empty() ? "" : ", ") + g.name;
      continue;
    }
    if (buf.Length() != g.size) {
      ThrowArgError(env, "value of global " + name, "a Buffer of exactly " + std::to_string(g.size) + " bytes", buf);
      return env.Undefined();
    }
    SectionPatch(env, e, g.section, g.offset, buf.Data(), buf.Length(), false);
    return env.Undefined();
  }
  Napi::Error err = SystemError(env, ENOENT, "btf__find_by_name");
  err.Value().Set("message", Napi::String::New(env, "no global variable named " + name + " in " + e->path +
                                                        " (globals: " + (names.empty() ? "(none)" : names) + ")"));
  err.ThrowAsJavaScriptException();
  return env.Undefined();
}

static Napi::Value ObjectSetSectionData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr || !RequireNotLoaded(env, e, "set section data")) return env.Undefined();
  std::string section;
  if (!ArgString(env, info[1], "section name", &section)) return env.Undefined();
  Napi::Buffer<uint8_t> buf;
  if (!ArgBuffer(env, info[2], "data for " + section, &buf)) return env.Undefined();
  SectionPatch(env, e, section, 0, buf.Data(), buf.Length(), true);
  return env.Undefined();
}

static Napi::Value ObjectReuseMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr || !RequireNotLoaded(env, e, "reuse map")) return env.Undefined();
  std::string name;
  struct bpf_map* m = FindMap(env, e, info[1], &name);
  if (m == nullptr) return env.Undefined();
  int fd;
  if (!ArgFd(env, info[2], "fd of the map to reuse for " + name, &fd)) return env.Undefined();
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) {
    ThrowSystemError(env, errno, "bpf_obj_get_info_by_fd");
    return env.Undefined();
  }
  uint64_t pinned_flags = mi.map_flags;
  // The kernel makes every devmap read-only to programs when it creates it (dev_map_init_map
  // adds BPF_F_RDONLY_PROG, which an object may not ask for itself): not a difference.
  if (mi.type == BPF_MAP_TYPE_DEVMAP || mi.type == BPF_MAP_TYPE_DEVMAP_HASH)
    pinned_flags &= ~static_cast<uint64_t>(BPF_F_RDONLY_PROG);
  struct {
    const char* prop;
    uint64_t pinned, object;
  } checks[] = {
      {"type", mi.type, static_cast<uint64_t>(bpf_map__type(m))},
      {"key_size", mi.key_size, bpf_map__key_size(m)},
      {"value_size", mi.value_size, bpf_map__value_size(m)},
      {"max_entries", mi.max_entries, bpf_map__max_entries(m)},
      {"map_flags", pinned_flags, bpf_map__map_flags(m)},
  };
  for (const auto& c : checks) {
    if (c.pinned == c.object) continue;
    Napi::Error err = SystemError(env, EINVAL, "bpf_map__reuse_fd");
    std::string msg = "map " + name + ": cannot reuse the existing map: " + c.prop + " is " + std::to_string(c.pinned) +
                      " in the existing map but " + std::to_string(c.object) + " in " + e->path;
    Napi::Object o = err.Value();
    o.Set("message", Napi::String::New(env, msg));
    o.Set("map", Napi::String::New(env, name));
    o.Set("property", Napi::String::New(env, c.prop));
    o.Set("existing", Napi::Number::New(env, static_cast<double>(c.pinned)));
    o.Set("expected", Napi::Number::New(env, static_cast<double>(c.object)));
    err.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int err = bpf_map__reuse_fd(m, fd);
  if (err) ThrowSystemError(env, -err, "bpf_map__reuse_fd");
  return env.Undefined();
}

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, uint32_t handle, struct bpf_object* obj)
      : Napi::AsyncWorker(env, "xdirector:bpf_object__load"),
        handle_(handle),
        obj_(obj),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    LibbpfLogCapture cap;
    err_ = bpf_object__load(obj_);
    log_ = cap.text();
    verifier_log_ = cap.VerifierLog();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    ObjectEntry* e = env.GetInstanceData<XdAddon>()->Find(handle_);
    if (e != nullptr) {
      e->busy = false;
      // libbpf refuses a second bpf_object__load even after a failure.
      e->loaded = true;
    }
    if (err_ == 0) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    // Name the kernel operation that failed, from libbpf's own messages.
    std::string syscall = "bpf_object__load";
    if (!verifier_log_.empty() || log_.find("BPF program load failed") != std::string::npos)
      syscall = "bpf_prog_load";
    else if (log_.find("failed to create map") != std::string::npos)
      syscall = "bpf_map_create";
    else if (log_.find("failed to pin map") != std::string::npos ||
             log_.find("couldn't reuse pinned map") != std::string::npos)
      syscall = "bpf_map__pin";
    Napi::Error err = SystemError(env, -err_, syscall);
    AttachLibbpfLog(env, err, log_, verifier_log_);
    deferred_.Reject(err.Value());
  }

 private:
  uint32_t handle_;
  struct bpf_object* obj_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  std::string log_, verifier_log_;
};

static Napi::Value ObjectLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectEntry* e = Addon(env)->GetObject(env, info[0]);
  if (e == nullptr || !RequireNotLoaded(env, e, "load")) return env.Undefined();
  uint32_t handle = info[0].As<Napi::Number>().Uint32Value();
  e->busy = true;
  LoadWorker* w = new LoadWorker(env, handle, e->obj);
  return QueueForPromise(w);
}

static void Init(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports,
                  {
                      {"objectOpen", ObjectOpen},
                      {"objectClose", ObjectClose},
                      {"objectMaps", ObjectMaps},
                      {"objectPrograms", ObjectPrograms},
                      {"objectGlobals", ObjectGlobals},
                      {"objectSetMaxEntries", ObjectSetMaxEntries},
                      {"objectSetGlobal", ObjectSetGlobal},
                      {"objectSetSectionData", ObjectSetSectionData},
                      {"objectReuseMap", ObjectReuseMap},
                      {"objectLoad", ObjectLoad},
                  });
}

XD_REGISTER_MODULE(Init);

}  // namespace xd
