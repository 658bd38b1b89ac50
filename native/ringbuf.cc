// ringbuf.cc: the reader of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF), for connection sync
// (bpf/sync.h writes, src/sync reads). libbpf's ring_buffer does the protocol (consumer and
// producer positions, busy and discarded records); this hands the records to JS in one Buffer
// per read, polled by the caller on a timer: the program submits without a wakeup, so there is
// no epoll to wait on, and one read every few milliseconds costs less than a wakeup per flow.
//
//   ringbufOpen(mapFd) -> handle (an External; freed by ringbufClose or the GC)
//   ringbufRead(handle, maxBytes) -> Buffer: records as [u32 length LE][record][pad to 8]...
//     Reads what is there now, and stops once maxBytes of output are reached (the rest stays
//     in the ring for the next read).
//   ringbufClose(handle)
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "module.h"
#include "util.h"

namespace xd {
namespace {

struct RingReader {
  struct ring_buffer* rb = nullptr;
  std::vector<uint8_t> out;
  size_t max_bytes = 0;
};

int OnRecord(void* ctx, void* data, size_t size) {
  RingReader* r = static_cast<RingReader*>(ctx);
  size_t padded = (size + 7) & ~static_cast<size_t>(7);
  size_t at = r->out.size();
  r->out.resize(at + 8 + padded, 0);
  uint32_t len = static_cast<uint32_t>(size);
  memcpy(r->out.data() + at, &len, 4);
  memcpy(r->out.data() + at + 8, data, size);
  // A negative return stops this read after the record (libbpf has consumed it): the output is full.
  return r->out.size() >= r->max_bytes ? -ENOSPC : 0;
}

void Finalize(Napi::Env, RingReader* r) {
  if (r->rb) ring_buffer__free(r->rb);
  delete r;
}

bool ArgReader(Napi::Env env, Napi::Value v, RingReader** out) {
  if (!v.IsExternal()) {
    ThrowArgError(env, "ring buffer handle", "a handle from ringbufOpen()", v);
    return false;
  }
  *out = v.As<Napi::External<RingReader>>().Data();
  if (!(*out)->rb) {
    ThrowArgError(env, "ring buffer handle", "an open handle (this one was closed)", v);
    return false;
  }
  return true;
}

Napi::Value RingbufOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(env, info[0], "ring buffer map fd", &fd)) return env.Undefined();
  RingReader* r = new RingReader();
  r->rb = ring_buffer__new(fd, OnRecord, r, nullptr);
  if (!r->rb) {
    int err = errno;
    delete r;
    ThrowSystemError(env, err, "ring_buffer__new");
    return env.Undefined();
  }
  return Napi::External<RingReader>::New(env, r, Finalize);
}

Napi::Value RingbufRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RingReader* r;
  if (!ArgReader(env, info[0], &r)) return env.Undefined();
  uint32_t max_bytes;
  if (!ArgU32(env, info[1], "maxBytes", &max_bytes)) return env.Undefined();
  r->out.clear();
  r->max_bytes = max_bytes == 0 ? 1 : max_bytes;
  int n = ring_buffer__consume(r->rb);
  if (n < 0 && n != -ENOSPC) {
    ThrowSystemError(env, -n, "ring_buffer__consume");
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, r->out.data(), r->out.size());
}

Napi::Value RingbufClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsExternal()) {
    ThrowArgError(env, "ring buffer handle", "a handle from ringbufOpen()", info[0]);
    return env.Undefined();
  }
  RingReader* r = info[0].As<Napi::External<RingReader>>().Data();
  if (r->rb) ring_buffer__free(r->rb);
  r->rb = nullptr;
  return env.Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ringbufOpen", Napi::Function::New(env, RingbufOpen, "ringbufOpen"));
  exports.Set("ringbufRead", Napi::Function::New(env, RingbufRead, "ringbufRead"));
  exports.Set("ringbufClose", Napi::Function::New(env, RingbufClose, "ringbufClose"));
}

}  // namespace
}  // namespace xd

XD_REGISTER_MODULE(xd::Init);
