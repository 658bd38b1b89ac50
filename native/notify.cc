// notify.cc: one datagram on an AF_UNIX socket, for systemd's service notification protocol
// (sd_notify(3): "READY=1", "WATCHDOG=1", "STATUS=…" sent to $NOTIFY_SOCKET). Node's dgram
// module has no AF_UNIX support, and `systemd-notify` would send from its own pid, which
// systemd ignores without NotifyAccess=all.
//
//   unixDatagramSend(path, Buffer) -> bytes sent
//     path: a filesystem socket path, or "@name" for the abstract namespace (sd_notify's rule:
//     a leading '@' is replaced by a NUL byte). Sent with sendto() on a fresh
//     SOCK_DGRAM|SOCK_CLOEXEC socket, closed at once. Errors are SystemError-like (util.h).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "module.h"
#include "util.h"

namespace xd {
namespace {

Napi::Value UnixDatagramSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgString(env, info[0], "socket path", &path)) return env.Undefined();
  Napi::Buffer<uint8_t> msg;
  if (!ArgBuffer(env, info[1], "message", &msg)) return env.Undefined();
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) {
    ThrowArgError(env, "socket path", "an absolute path or @abstract name under 108 bytes", info[0]);
    return env.Undefined();
  }
  memcpy(sa.sun_path, path.data(), path.size());
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowSystemError(env, errno, "socket(AF_UNIX, SOCK_DGRAM)");
    return env.Undefined();
  }
  ssize_t n = sendto(fd, msg.Data(), msg.Length(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&sa), len);
  int err = errno;
  close(fd);
  if (n < 0) {
    ThrowSystemError(env, err, "sendto");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("unixDatagramSend", Napi::Function::New(env, UnixDatagramSend, "unixDatagramSend"));
}

}  // namespace

XD_REGISTER_MODULE(Init);

}  // namespace xd
