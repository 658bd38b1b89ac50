// ethtool.cc: a network driver's own statistics (what `ethtool -S` prints),
// through the SIOCETHTOOL ioctl of the calling thread's network namespace.
// Thin: names and values out, no meaning; which counters matter (XDP TX errors)
// is decided in TypeScript (src/net/ethtool.ts).
//
//   ethtoolStats(ifname) -> { driver, names: string[], values: BigInt[] }
//     ETHTOOL_GDRVINFO (driver name, n_stats), ETHTOOL_GSTRINGS (ETH_SS_STATS)
//     and ETHTOOL_GSTATS. A driver without statistics (lo) fails with
//     EOPNOTSUPP. If the count changes between the calls (a queue was added),
//     the shorter of the two lists is returned.
//
// Errors are Node SystemError-like (errno, code, syscall); see util.h.
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "module.h"
#include "util.h"

namespace xd {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// One SIOCETHTOOL request; returns 0 or a positive errno.
int Ethtool(int sock, const std::string& ifname, void* cmd) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  ifr.ifr_data = static_cast<char*>(cmd);
  return ioctl(sock, SIOCETHTOOL, &ifr) < 0 ? errno : 0;
}

Napi::Value EthtoolStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname;
  if (!ArgString(env, info[0], "interface name", &ifname)) return env.Undefined();
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    ThrowArgError(env, "interface name", "a name of 1-15 characters", info[0]);
    return env.Undefined();
  }
  Fd sock{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (sock.fd < 0) {
    ThrowSystemError(env, errno, "socket");
    return env.Undefined();
  }

  struct ethtool_drvinfo drv;
  memset(&drv, 0, sizeof(drv));
  drv.cmd = ETHTOOL_GDRVINFO;
  if (int err = Ethtool(sock.fd, ifname, &drv)) {
    ThrowSystemError(env, err, "ioctl(SIOCETHTOOL ETHTOOL_GDRVINFO)");
    return env.Undefined();
  }
  uint32_t n = drv.n_stats;
  if (n == 0) {
    ThrowSystemError(env, EOPNOTSUPP, "ioctl(SIOCETHTOOL ETHTOOL_GDRVINFO)");
    return env.Undefined();
  }

  std::vector<uint8_t> strbuf(sizeof(struct ethtool_gstrings) + static_cast<size_t>(n) * ETH_GSTRING_LEN);
  auto* gs = reinterpret_cast<struct ethtool_gstrings*>(strbuf.data());
  gs->cmd = ETHTOOL_GSTRINGS;
  gs->string_set = ETH_SS_STATS;
  gs->len = n;
  if (int err = Ethtool(sock.fd, ifname, gs)) {
    ThrowSystemError(env, err, "ioctl(SIOCETHTOOL ETHTOOL_GSTRINGS)");
    return env.Undefined();
  }

  std::vector<uint8_t> statbuf(sizeof(struct ethtool_stats) + static_cast<size_t>(n) * sizeof(uint64_t));
  auto* st = reinterpret_cast<struct ethtool_stats*>(statbuf.data());
  st->cmd = ETHTOOL_GSTATS;
  st->n_stats = n;
  if (int err = Ethtool(sock.fd, ifname, st)) {
    ThrowSystemError(env, err, "ioctl(SIOCETHTOOL ETHTOOL_GSTATS)");
    return env.Undefined();
  }

  uint32_t count = std::min({n, gs->len, st->n_stats});
  Napi::Array names = Napi::Array::New(env, count);
  Napi::Array values = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) {
    const char* s = reinterpret_cast<const char*>(gs->data + static_cast<size_t>(i) * ETH_GSTRING_LEN);
    names.Set(i, Napi::String::New(env, s, strnlen(s, ETH_GSTRING_LEN)));
    values.Set(i, Napi::BigInt::New(env, static_cast<uint64_t>(st->data[i])));
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("driver", Napi::String::New(env, drv.driver, strnlen(drv.driver, sizeof(drv.driver))));
  r.Set("names", names);
  r.Set("values", values);
  return r;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ethtoolStats", Napi::Function::New(env, EthtoolStats, "ethtoolStats"));
}

}  // namespace

XD_REGISTER_MODULE(Init);

}  // namespace xd
