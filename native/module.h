// module.h: a tiny static registrar so that each native/*.cc file adds its own
// functions to the addon's exports without editing addon.cc or binding.gyp
// (binding.gyp compiles every native/*.cc).
//
// Usage, at namespace scope in any native/*.cc:
//
//   static void InitSockets(Napi::Env env, Napi::Object exports) {
//     exports.Set("openVrrpSocket", Napi::Function::New(env, OpenVrrpSocket));
//   }
//   XD_REGISTER_MODULE(InitSockets);
//
// addon.cc calls every registered function once per environment at addon
// init (order of registration between files is unspecified). Per-environment
// state lives in the Napi::Addon<XdAddon> instance (addon.h), reachable from
// any callback with env.GetInstanceData<xd::XdAddon>().
#ifndef XD_NATIVE_MODULE_H
#define XD_NATIVE_MODULE_H

#include <napi.h>
#include <vector>

namespace xd {

using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);

// Function-local static: safe to use from static initialisers of other
// translation units (no static initialisation order problem).
inline std::vector<ModuleInit>& ModuleRegistry() {
  static std::vector<ModuleInit> registry;
  return registry;
}

struct ModuleRegistrar {
  explicit ModuleRegistrar(ModuleInit fn) { ModuleRegistry().push_back(fn); }
};

}  // namespace xd

#define XD_REGISTER_MODULE_CONCAT2(a, b) a##b
#define XD_REGISTER_MODULE_CONCAT(a, b) XD_REGISTER_MODULE_CONCAT2(a, b)
#define XD_REGISTER_MODULE(fn) \
  static ::xd::ModuleRegistrar XD_REGISTER_MODULE_CONCAT(xd_module_registrar_, __LINE__)(fn)

#endif  // XD_NATIVE_MODULE_H
