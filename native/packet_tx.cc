// packet_tx.cc: a packet generator's send loop on an AF_PACKET TX ring
// (TPACKET_V2, PACKET_QDISC_BYPASS), for kernels that refuse BPF_PROG_RUN live
// frames. Thin and ignorant of layouts: TypeScript builds the frames (one per
// flow, headers and checksums done); this copies them into the ring in turn
// and has the kernel transmit them. The per-packet loop is here because a JS
// loop would cost more than the path it measures.
//
//   new PacketTx({ ifindex, frames, frameLen, ringFrames? = 4096, qdiscBypass? = true })
//     socket(AF_PACKET, SOCK_RAW, 0) (protocol 0: it receives nothing, so the
//     frames coming back to this interface are not copied to it), a mmapped
//     TPACKET_V2 TX ring, frames sent to `ifindex` of the namespace the socket
//     was made in. `frames`: frameLen-byte frames back to back (at least one).
//   .setFrames(frames, frameLen)   replaces the frames; the next send starts at frame 0
//   .send(count, batch) -> Promise<{ sent, seconds }>
//     on a worker thread: count frames, cycling through the frames from where
//     the last send stopped, the kernel asked to transmit every `batch` ring
//     slots (send(2) on the ring); returns once the kernel has sent them all.
//   .close()
//
// Errors are Node SystemError-like (errno, code, syscall); see util.h.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "module.h"
#include "util.h"

namespace xd {
namespace {

// One ring slot: the tpacket2 header, then the frame at TPACKET2_HDRLEN - sizeof(sockaddr_ll)
// (the TX data offset the kernel uses when PACKET_TX_HAS_OFF is not set).
constexpr unsigned kSlotSize = 2048;
constexpr unsigned kBlockSize = 1 << 16;
constexpr size_t kDataOff = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
constexpr size_t kMaxFrame = kSlotSize - kDataOff;

// State shared between the JS object and a running send worker (which holds a reference, so a
// close() while it runs only takes effect when it finishes).
struct Ring {
  int fd = -1;
  uint8_t* map = nullptr;
  size_t map_len = 0;
  unsigned slots = 0;
  unsigned cur = 0;             // next ring slot to fill
  std::vector<uint8_t> frames;  // frame_len-byte frames back to back
  size_t frame_len = 0;
  size_t next_frame = 0;   // next frame to send
  struct sockaddr_ll dst;  // interface, EtherType and destination MAC of the frames
  std::atomic<bool> busy{false};

  ~Ring() {
    if (map) munmap(map, map_len);
    if (fd >= 0) close(fd);
  }

  struct tpacket2_hdr* Slot(unsigned i) {
    return reinterpret_cast<struct tpacket2_hdr*>(map + static_cast<size_t>(i) * kSlotSize);
  }

  // Asks the kernel to send every slot marked SEND_REQUEST; blocking: returns when they are sent.
  // 0 or a positive errno.
  int Flush() {
    for (;;) {
      ssize_t r = sendto(fd, nullptr, 0, 0, reinterpret_cast<struct sockaddr*>(&dst), sizeof(dst));
      if (r >= 0) return 0;
      // ENOBUFS: the device queue was full; EAGAIN/EINTR: try again (nothing was lost, the
      // slots keep SEND_REQUEST until the kernel takes them).
      if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) continue;
      return errno;
    }
  }

  // Sends `count` frames, `batch` slots per send(2). 0 or a positive errno (*syscall names it).
  int Send(uint64_t count, unsigned batch, uint64_t* sent, const char** syscall) {
    unsigned pending = 0;
    *sent = 0;
    const size_t nframes = frames.size() / frame_len;
    while (*sent < count) {
      struct tpacket2_hdr* h = Slot(cur);
      uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if (st & TP_STATUS_WRONG_FORMAT) {
        *syscall = "send(AF_PACKET TX ring): the kernel rejected a frame (TP_STATUS_WRONG_FORMAT)";
        return EINVAL;
      }
      if (st != TP_STATUS_AVAILABLE) {
        // The ring is full of frames the kernel has not taken yet: have it send them.
        pending = 0;
        int e = Flush();
        if (e) {
          *syscall = "sendto(AF_PACKET TX ring)";
          return e;
        }
        if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) {
          struct pollfd p = {fd, POLLOUT, 0};
          if (poll(&p, 1, 100) < 0 && errno != EINTR) {
            *syscall = "poll(AF_PACKET TX ring)";
            return errno;
          }
        }
        continue;
      }
      memcpy(reinterpret_cast<uint8_t*>(h) + kDataOff, frames.data() + next_frame * frame_len, frame_len);
      h->tp_len = static_cast<uint32_t>(frame_len);
      __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
      cur = cur + 1 == slots ? 0 : cur + 1;
      next_frame = next_frame + 1 == nframes ? 0 : next_frame + 1;
      ++*sent;
      if (++pending >= batch) {
        pending = 0;
        int e = Flush();
        if (e) {
          *syscall = "sendto(AF_PACKET TX ring)";
          return e;
        }
      }
    }
    int e = Flush();
    if (e) *syscall = "sendto(AF_PACKET TX ring)";
    return e;
  }
};

class SendWorker : public Napi::AsyncWorker {
 public:
  SendWorker(Napi::Env env, std::shared_ptr<Ring> ring, uint64_t count, unsigned batch)
      : Napi::AsyncWorker(env, "xdirector:packet_tx_send"),
        ring_(std::move(ring)),
        count_(count),
        batch_(batch),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    err_ = ring_->Send(count_, batch_, &sent_, &syscall_);
    clock_gettime(CLOCK_MONOTONIC, &b);
    seconds_ = static_cast<double>(b.tv_sec - a.tv_sec) + static_cast<double>(b.tv_nsec - a.tv_nsec) / 1e9;
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    ring_->busy = false;
    if (err_) {
      Napi::Error e = SystemError(env, err_, syscall_);
      e.Value().Set("sent", Napi::Number::New(env, static_cast<double>(sent_)));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("sent", Napi::Number::New(env, static_cast<double>(sent_)));
    o.Set("seconds", Napi::Number::New(env, seconds_));
    deferred_.Resolve(o);
  }

 private:
  std::shared_ptr<Ring> ring_;
  uint64_t count_;
  unsigned batch_;
  Napi::Promise::Deferred deferred_;
  uint64_t sent_ = 0;
  double seconds_ = 0;
  int err_ = 0;
  const char* syscall_ = "";
};

class PacketTx : public Napi::ObjectWrap<PacketTx> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "PacketTx",
        {InstanceMethod<&PacketTx::SetFrames>("setFrames"), InstanceMethod<&PacketTx::Send>("send"),
         InstanceMethod<&PacketTx::Close>("close"), InstanceAccessor<&PacketTx::GetSlots>("ringFrames")});
  }

  explicit PacketTx(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketTx>(info) {
    Napi::Env env = info.Env();
    Napi::Object opts;
    if (!ArgObject(env, info[0], "PacketTx options", &opts)) return;
    uint32_t ifindex, ring_frames = 4096;
    if (!ArgU32(env, opts.Get("ifindex"), "options.ifindex", &ifindex)) return;
    if (!IsAbsent(opts.Get("ringFrames")) && !ArgU32(env, opts.Get("ringFrames"), "options.ringFrames", &ring_frames))
      return;
    const unsigned per_block = kBlockSize / kSlotSize;
    if (ring_frames < per_block || ring_frames % per_block != 0 || ring_frames > (1u << 20)) {
      ThrowArgError(env, "options.ringFrames", "a multiple of " + std::to_string(per_block) + " up to 1048576",
                    opts.Get("ringFrames"));
      return;
    }
    bool bypass = IsAbsent(opts.Get("qdiscBypass")) ? true : opts.Get("qdiscBypass").ToBoolean().Value();
    auto r = std::make_shared<Ring>();
    if (!LoadFrames(env, info, opts.Get("frames"), opts.Get("frameLen"), r.get())) return;
    r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
      ThrowSystemError(env, errno, "socket(AF_PACKET)");
      return;
    }
    int v = TPACKET_V2;
    if (setsockopt(r->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) != 0) {
      ThrowSystemError(env, errno, "setsockopt(PACKET_VERSION, TPACKET_V2)");
      return;
    }
    // Straight to the driver's xmit (dev_direct_xmit), past the qdisc layer: what a generator
    // wants to measure is the path behind the interface, not the sender's queueing.
    int one = 1;
    if (bypass && setsockopt(r->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) != 0) {
      ThrowSystemError(env, errno, "setsockopt(PACKET_QDISC_BYPASS)");
      return;
    }
    struct tpacket_req req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = kBlockSize;
    req.tp_frame_size = kSlotSize;
    req.tp_block_nr = ring_frames / per_block;
    req.tp_frame_nr = ring_frames;
    if (setsockopt(r->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) != 0) {
      ThrowSystemError(env, errno, "setsockopt(PACKET_TX_RING)");
      return;
    }
    r->map_len = static_cast<size_t>(req.tp_block_size) * req.tp_block_nr;
    void* m = mmap(nullptr, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (m == MAP_FAILED) {
      ThrowSystemError(env, errno, "mmap(PACKET_TX_RING)");
      return;
    }
    r->map = static_cast<uint8_t*>(m);
    r->slots = ring_frames;
    memset(&r->dst, 0, sizeof(r->dst));
    r->dst.sll_family = AF_PACKET;
    r->dst.sll_ifindex = static_cast<int>(ifindex);
    r->dst.sll_halen = ETH_ALEN;
    memcpy(&r->dst.sll_protocol, r->frames.data() + 12, 2);  // EtherType, network order
    memcpy(r->dst.sll_addr, r->frames.data(), ETH_ALEN);
    ring_ = std::move(r);
  }

 private:
  // Reads frames + frameLen into r (a copy: JS may reuse its Buffer). False with a pending TypeError.
  static bool LoadFrames(Napi::Env env, const Napi::CallbackInfo&, Napi::Value frames, Napi::Value len_v, Ring* r) {
    Napi::Buffer<uint8_t> b;
    uint32_t len;
    if (!ArgBuffer(env, frames, "frames", &b) || !ArgU32(env, len_v, "frameLen", &len)) return false;
    if (len < ETH_HLEN || len > kMaxFrame) {
      ThrowArgError(env, "frameLen", "a frame length from 14 to " + std::to_string(kMaxFrame), len_v);
      return false;
    }
    if (b.Length() == 0 || b.Length() % len != 0) {
      ThrowArgError(env, "frames", "one or more frames of frameLen (" + std::to_string(len) + ") bytes back to back",
                    frames);
      return false;
    }
    r->frames.assign(b.Data(), b.Data() + b.Length());
    r->frame_len = len;
    r->next_frame = 0;
    return true;
  }

  Ring* Live(Napi::Env env) {
    if (!ring_) {
      Napi::Error::New(env, "PacketTx is closed").ThrowAsJavaScriptException();
      return nullptr;
    }
    if (ring_->busy) {
      Napi::Error::New(env, "PacketTx: a send is running; wait for it to settle").ThrowAsJavaScriptException();
      return nullptr;
    }
    return ring_.get();
  }

  Napi::Value SetFrames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring* r = Live(env);
    if (!r) return env.Undefined();
    Ring tmp;
    if (!LoadFrames(env, info, info[0], info[1], &tmp)) return env.Undefined();
    r->frames.swap(tmp.frames);
    r->frame_len = tmp.frame_len;
    r->next_frame = 0;
    return env.Undefined();
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring* r = Live(env);
    if (!r) return env.Undefined();
    uint64_t count;
    uint32_t batch;
    if (!ArgU64(env, info[0], "count", &count) || !ArgU32(env, info[1], "batch", &batch)) return env.Undefined();
    if (batch < 1) {
      ThrowArgError(env, "batch", "at least 1", info[1]);
      return env.Undefined();
    }
    r->busy = true;
    return QueueForPromise(new SendWorker(env, ring_, count, batch));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (ring_ && ring_->busy) {
      Napi::Error::New(env, "PacketTx: a send is running; wait for it to settle").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ring_.reset();
    return env.Undefined();
  }

  Napi::Value GetSlots(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ring_ ? ring_->slots : 0);
  }

  std::shared_ptr<Ring> ring_;
};

void InitPacketTx(Napi::Env env, Napi::Object exports) { exports.Set("PacketTx", PacketTx::Define(env)); }

}  // namespace

XD_REGISTER_MODULE(InitPacketTx);

}  // namespace xd
