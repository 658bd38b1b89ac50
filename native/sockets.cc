// sockets.cc: raw sockets for VRRP. Thin: no VRRP knowledge beyond the IP
// protocol number and the multicast groups; packets are built and checked in
// TypeScript (src/vrrp/codec.ts, src/vrrp/frames.ts).
//
//   new VrrpSocket({ family: 4|6, ifname, multicast, onPacket(buf, info) })
//     raw IP protocol 112 socket bound to the interface (SO_BINDTODEVICE),
//     joined to 224.0.0.18 / ff02::12 on it when `multicast`, TTL / hop limit
//     255 on send, multicast loopback off. A reader thread polls the socket and
//     hands each datagram to `onPacket` on the JS thread through a
//     ThreadSafeFunction, so the event loop never blocks:
//       IPv4: buf = the whole IP datagram (header included, as raw sockets give it),
//             info = { src }
//       IPv6: buf = the VRRP message, info = { src, dst, ttl } (hop limit and
//             destination from IPV6_HOPLIMIT / IPV6_PKTINFO control messages).
//     .send(buf, dst, src?) → bytes sent; src pins the source address and the
//       outgoing interface (IP_PKTINFO / IPV6_PKTINFO).
//     .close(); .ifindex; .queueDrops (datagrams dropped because JS lagged).
//   sendFrame(ifindex, frame) → bytes sent: one Ethernet frame through an
//     AF_PACKET socket (gratuitous ARP, unsolicited neighbour advertisement).
//
// Errors are Node SystemError-like (errno, code, syscall); see util.h.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "module.h"
#include "util.h"

namespace xd {
namespace {

constexpr int kVrrpProto = 112;
constexpr size_t kMaxDatagram = 65536;
constexpr size_t kQueueLimit = 4096;

// Puts one IP_PKTINFO / IPV6_PKTINFO control message (the source address and interface of a
// sent packet) into `cbuf`, which must hold CMSG_SPACE(sizeof(pi)) bytes, and points `mh` at it.
template <typename Pktinfo>
void SetPktinfo(struct msghdr* mh, char* cbuf, int level, int type, const Pktinfo& pi) {
  mh->msg_control = cbuf;
  mh->msg_controllen = CMSG_SPACE(sizeof(pi));
  struct cmsghdr* c = CMSG_FIRSTHDR(mh);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof(pi));
  memcpy(CMSG_DATA(c), &pi, sizeof(pi));
}

struct RxPacket {
  std::vector<uint8_t> data;
  std::string src;
  std::string dst;
  int ttl = -1;
};

class VrrpSocket : public Napi::ObjectWrap<VrrpSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "VrrpSocket",
                       {InstanceMethod<&VrrpSocket::Send>("send"), InstanceMethod<&VrrpSocket::Close>("close"),
                        InstanceAccessor<&VrrpSocket::GetIfindex>("ifindex"),
                        InstanceAccessor<&VrrpSocket::GetQueueDrops>("queueDrops")});
  }

  explicit VrrpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VrrpSocket>(info) {
    Napi::Env env = info.Env();
    Napi::Object opts;
    if (!ArgObject(env, info[0], "VrrpSocket options", &opts)) return;
    uint32_t fam;
    if (!ArgU32(env, opts.Get("family"), "options.family", &fam)) return;
    if (fam != 4 && fam != 6) {
      ThrowArgError(env, "options.family", "4 or 6", opts.Get("family"));
      return;
    }
    std::string ifname;
    if (!ArgString(env, opts.Get("ifname"), "options.ifname", &ifname)) return;
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
      ThrowArgError(env, "options.ifname", "an interface name of 1-15 characters", opts.Get("ifname"));
      return;
    }
    bool multicast = opts.Get("multicast").ToBoolean().Value();
    Napi::Value cb = opts.Get("onPacket");
    if (!cb.IsFunction()) {
      ThrowArgError(env, "options.onPacket", "a function", cb);
      return;
    }
    family_ = static_cast<int>(fam);
    ifindex_ = if_nametoindex(ifname.c_str());
    if (ifindex_ == 0) {
      ThrowSystemError(env, errno, "if_nametoindex " + ifname);
      return;
    }
    if (!OpenSocket(env, ifname, multicast)) return;
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) {
      int e = errno;
      CloseFds();
      ThrowSystemError(env, e, "eventfd");
      return;
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), "xdirector-vrrp-rx", kQueueLimit, 1);
    reader_ = std::thread([this] { ReadLoop(); });
  }

  ~VrrpSocket() override { Shutdown(); }

 private:
  bool SetOpt(Napi::Env env, int level, int name, const void* val, socklen_t len, const char* what) {
    if (setsockopt(fd_, level, name, val, len) == 0) return true;
    int e = errno;
    CloseFds();
    ThrowSystemError(env, e, std::string("setsockopt ") + what);
    return false;
  }

  bool OpenSocket(Napi::Env env, const std::string& ifname, bool multicast) {
    fd_ = socket(family_ == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, kVrrpProto);
    if (fd_ < 0) {
      ThrowSystemError(env, errno, "socket(SOCK_RAW, 112)");
      return false;
    }
    if (!SetOpt(env, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), ifname.size(), "SO_BINDTODEVICE")) return false;
    int one = 1, zero = 0, ttl = 255;
    int rcvbuf = 1 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));  // best effort
    if (family_ == 4) {
      if (!SetOpt(env, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl), "IP_TTL")) return false;
      if (!SetOpt(env, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl), "IP_MULTICAST_TTL")) return false;
      if (!SetOpt(env, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof(zero), "IP_MULTICAST_LOOP")) return false;
      // Only the groups this socket joined, not every group joined on the host.
      if (!SetOpt(env, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero), "IP_MULTICAST_ALL")) return false;
      struct ip_mreqn mr;
      memset(&mr, 0, sizeof(mr));
      mr.imr_ifindex = static_cast<int>(ifindex_);
      if (!SetOpt(env, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr), "IP_MULTICAST_IF")) return false;
      if (multicast) {
        inet_pton(AF_INET, "224.0.0.18", &mr.imr_multiaddr);
        if (!SetOpt(env, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr), "IP_ADD_MEMBERSHIP 224.0.0.18")) return false;
      }
    } else {
      int idx = static_cast<int>(ifindex_);
      if (!SetOpt(env, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl), "IPV6_UNICAST_HOPS")) return false;
      if (!SetOpt(env, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof(ttl), "IPV6_MULTICAST_HOPS")) return false;
      if (!SetOpt(env, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof(zero), "IPV6_MULTICAST_LOOP")) return false;
      if (!SetOpt(env, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof(zero), "IPV6_MULTICAST_ALL")) return false;
      if (!SetOpt(env, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx), "IPV6_MULTICAST_IF")) return false;
      if (!SetOpt(env, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof(one), "IPV6_RECVHOPLIMIT")) return false;
      if (!SetOpt(env, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one), "IPV6_RECVPKTINFO")) return false;
      if (multicast) {
        struct ipv6_mreq mr;
        memset(&mr, 0, sizeof(mr));
        inet_pton(AF_INET6, "ff02::12", &mr.ipv6mr_multiaddr);
        mr.ipv6mr_interface = ifindex_;
        if (!SetOpt(env, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof(mr), "IPV6_ADD_MEMBERSHIP ff02::12"))
          return false;
      }
    }
    return true;
  }

  void ReadLoop() {
    std::vector<uint8_t> buf(kMaxDatagram);
    alignas(struct cmsghdr) char cbuf[256];
    for (;;) {
      struct pollfd p[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      int n = poll(p, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[1].revents) break;
      if (!(p[0].revents & POLLIN)) {
        if (p[0].revents & (POLLERR | POLLNVAL)) break;
        continue;
      }
      for (;;) {  // drain what is queued
        struct sockaddr_storage from;
        struct iovec iov = {buf.data(), buf.size()};
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_name = &from;
        mh.msg_namelen = sizeof(from);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        ssize_t r = recvmsg(fd_, &mh, MSG_DONTWAIT);
        if (r < 0) break;  // EAGAIN: drained; other errors: poll again
        auto* pkt = new RxPacket();
        pkt->data.assign(buf.begin(), buf.begin() + r);
        char text[INET6_ADDRSTRLEN] = "";
        if (from.ss_family == AF_INET) {
          inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&from)->sin_addr, text, sizeof(text));
        } else if (from.ss_family == AF_INET6) {
          inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&from)->sin6_addr, text, sizeof(text));
        }
        pkt->src = text;
        for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
          if (c->cmsg_level != IPPROTO_IPV6) continue;
          if (c->cmsg_type == IPV6_HOPLIMIT) {
            int hl;
            memcpy(&hl, CMSG_DATA(c), sizeof(hl));
            pkt->ttl = hl;
          } else if (c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            char d[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, &pi.ipi6_addr, d, sizeof(d));
            pkt->dst = d;
          }
        }
        napi_status st = tsfn_.NonBlockingCall(pkt, [](Napi::Env env, Napi::Function fn, RxPacket* p) {
          std::unique_ptr<RxPacket> own(p);
          if (env == nullptr || fn.IsEmpty()) return;
          Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::Copy(env, p->data.data(), p->data.size());
          Napi::Object meta = Napi::Object::New(env);
          meta.Set("src", Napi::String::New(env, p->src));
          if (!p->dst.empty()) meta.Set("dst", Napi::String::New(env, p->dst));
          if (p->ttl >= 0) meta.Set("ttl", Napi::Number::New(env, p->ttl));
          fn.Call({data, meta});
          // An exception thrown by the JS callback is reported by Node as uncaught; the reader goes on.
        });
        if (st != napi_ok) {
          delete pkt;
          if (st == napi_queue_full) {
            queue_drops_.fetch_add(1, std::memory_order_relaxed);
          } else {
            return;  // closing
          }
        }
      }
    }
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) {
      ThrowSystemError(env, EBADF, "send (socket closed)");
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> data;
    if (!ArgBuffer(env, info[0], "data", &data)) return env.Undefined();
    std::string dst, src;
    if (!ArgString(env, info[1], "destination address", &dst)) return env.Undefined();
    bool have_src = !IsAbsent(info[2]);
    if (have_src && !ArgString(env, info[2], "source address", &src)) return env.Undefined();

    struct sockaddr_storage to;
    memset(&to, 0, sizeof(to));
    socklen_t tolen;
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    memset(cbuf, 0, sizeof(cbuf));
    struct iovec iov = {data.Data(), data.Length()};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (family_ == 4) {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&to);
      s4->sin_family = AF_INET;
      if (inet_pton(AF_INET, dst.c_str(), &s4->sin_addr) != 1) {
        ThrowArgError(env, "destination address", "an IPv4 address", info[1]);
        return env.Undefined();
      }
      tolen = sizeof(*s4);
      if (have_src) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi_ifindex = static_cast<int>(ifindex_);
        if (inet_pton(AF_INET, src.c_str(), &pi.ipi_spec_dst) != 1) {
          ThrowArgError(env, "source address", "an IPv4 address", info[2]);
          return env.Undefined();
        }
        SetPktinfo(&mh, cbuf, IPPROTO_IP, IP_PKTINFO, pi);
      }
    } else {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&to);
      s6->sin6_family = AF_INET6;
      if (inet_pton(AF_INET6, dst.c_str(), &s6->sin6_addr) != 1) {
        ThrowArgError(env, "destination address", "an IPv6 address", info[1]);
        return env.Undefined();
      }
      s6->sin6_scope_id = ifindex_;  // link-local destinations need the interface
      tolen = sizeof(*s6);
      if (have_src) {
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi6_ifindex = ifindex_;
        if (inet_pton(AF_INET6, src.c_str(), &pi.ipi6_addr) != 1) {
          ThrowArgError(env, "source address", "an IPv6 address", info[2]);
          return env.Undefined();
        }
        SetPktinfo(&mh, cbuf, IPPROTO_IPV6, IPV6_PKTINFO, pi);
      }
    }
    mh.msg_name = &to;
    mh.msg_namelen = tolen;
    ssize_t r = sendmsg(fd_, &mh, MSG_DONTWAIT);
    if (r < 0) {
      ThrowSystemError(env, errno, "sendmsg to " + dst);
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(r));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value GetIfindex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }
  Napi::Value GetQueueDrops(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(queue_drops_.load(std::memory_order_relaxed)));
  }

  void Shutdown() {
    if (reader_.joinable()) {
      uint64_t one = 1;
      ssize_t w = write(stop_fd_, &one, sizeof(one));
      (void)w;
      reader_.join();
      tsfn_.Release();
    }
    CloseFds();
  }

  void CloseFds() {
    if (fd_ >= 0) close(fd_);
    if (stop_fd_ >= 0) close(stop_fd_);
    fd_ = -1;
    stop_fd_ = -1;
  }

  int family_ = 4;
  unsigned ifindex_ = 0;
  int fd_ = -1;
  int stop_fd_ = -1;
  std::thread reader_;
  Napi::ThreadSafeFunction tsfn_;
  std::atomic<uint64_t> queue_drops_{0};
};

// sendFrame(ifindex, frame): one complete Ethernet frame out of `ifindex`.
Napi::Value SendFrame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex;
  if (!ArgU32(env, info[0], "ifindex", &ifindex)) return env.Undefined();
  Napi::Buffer<uint8_t> frame;
  if (!ArgBufferMin(env, info[1], "frame", ETH_HLEN, &frame)) return env.Undefined();
  // Protocol 0: a send-only packet socket (it receives nothing).
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowSystemError(env, errno, "socket(AF_PACKET)");
    return env.Undefined();
  }
  struct sockaddr_ll ll;
  memset(&ll, 0, sizeof(ll));
  ll.sll_family = AF_PACKET;
  ll.sll_ifindex = static_cast<int>(ifindex);
  ll.sll_halen = ETH_ALEN;
  memcpy(&ll.sll_protocol, frame.Data() + 12, 2);  // EtherType, network order
  memcpy(ll.sll_addr, frame.Data(), ETH_ALEN);
  ssize_t r = sendto(fd, frame.Data(), frame.Length(), 0, reinterpret_cast<sockaddr*>(&ll), sizeof(ll));
  int e = errno;
  close(fd);
  if (r < 0) {
    ThrowSystemError(env, e, "sendto(AF_PACKET) ifindex " + std::to_string(ifindex));
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("VrrpSocket", VrrpSocket::Define(env));
  ExportFunctions(env, exports,
                  {
                      {"sendFrame", SendFrame},
                  });
}

}  // namespace

XD_REGISTER_MODULE(InitSockets);

}  // namespace xd
