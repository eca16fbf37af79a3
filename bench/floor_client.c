/* The floor for bench/hook_latency: the least a hook client can do. Connect to ferryd's
 * socket, send one EVENT frame (built at start with a fresh random id and the current time,
 * the same shape and payload as the `ferry emit` call it is compared with), read the ACK,
 * exit 0. Plain C, linked statically: no flag parsing, no JSON library, no allocation.
 *
 *   floor_client SOCKET      exit 0 on an ACK, 1 on anything else (message on stderr)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { kEventType = 2, kAckType = 4 };

static int Fail(const char* what) {
  perror(what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fputs("usage: floor_client SOCKET\n", stderr);
    return 2;
  }
  unsigned char rnd[16];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return Fail("getrandom");
  char id[33];
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    id[2 * i] = kHex[rnd[i] >> 4];
    id[2 * i + 1] = kHex[rnd[i] & 15];
  }
  id[32] = '\0';
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const long long ts = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;

  char frame[1024];
  const int body = snprintf(frame + 5, sizeof frame - 5,
                            "{\"v\":1,\"event\":{\"id\":\"%s\",\"ts\":%lld,\"source\":\"bench\","
                            "\"kind\":\"hook\",\"cwd\":\"/tmp\",\"host\":\"bench\",\"pid\":%d,"
                            "\"payload\":{\"tool\":\"Bash\",\"n\":1}}}",
                            id, ts, (int)getppid());
  if (body <= 0 || (size_t)body >= sizeof frame - 5) return Fail("snprintf");
  const uint32_t len = (uint32_t)body + 1;
  frame[0] = (char)(len & 0xff);
  frame[1] = (char)((len >> 8) & 0xff);
  frame[2] = (char)((len >> 16) & 0xff);
  frame[3] = (char)((len >> 24) & 0xff);
  frame[4] = kEventType;

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(argv[1]) >= sizeof addr.sun_path) {
    fputs("floor_client: socket path too long\n", stderr);
    return 1;
  }
  strcpy(addr.sun_path, argv[1]);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail("socket");
  struct timeval timeout = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) return Fail("connect");
  const size_t total = 4 + (size_t)len;
  if (write(fd, frame, total) != (ssize_t)total) return Fail("write");

  /* The ACK is small: one read almost always brings it whole; loop anyway. */
  char reply[512];
  size_t got = 0, need = 5;
  while (got < need) {
    const ssize_t n = read(fd, reply + got, sizeof reply - got);
    if (n <= 0) return Fail("read ack");
    got += (size_t)n;
    if (got >= 4) {
      need = 4 + ((size_t)(unsigned char)reply[0] | (size_t)(unsigned char)reply[1] << 8 |
                  (size_t)(unsigned char)reply[2] << 16 | (size_t)(unsigned char)reply[3] << 24);
      if (need > sizeof reply || need < 5) {
        fputs("floor_client: reply frame has a bad length\n", stderr);
        return 1;
      }
    }
  }
  if (reply[4] != kAckType) {
    fprintf(stderr, "floor_client: reply type %d, not ACK: %.*s\n", reply[4], (int)(got - 5),
            reply + 5);
    return 1;
  }
  close(fd);
  return 0;
}
