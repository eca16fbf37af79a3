/* The shared floor's hookclient (../shared/floor/hookclient.c) for lines of up to 64 KiB: it
 * stops at 4096 bytes (a stack buffer), and a 20 KB hook needs a floor of its own size to be
 * compared with (emit_payload_bench --vs-floor, column "/ floor same size"). The same work:
 * connect to a Unix stream socket, write one event line built like the shared make_event
 * (copied below), read a one-line ack, exit 0. The line lives in .bss, so its pages fault in
 * as they are written, as a hook client's buffer of that size would.
 *
 *   sized_hookclient SOCKPATH BYTES
 *   exit 0 acked, 1 connect failed, 2 write failed, 3 no ack, 64 bad arguments
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { kMaxLine = 65536 };
static char ev[kMaxLine];

/* As ../shared/floor/stats.h make_event: a JSON line of exactly len bytes ending in '\n'. */
static void make_event(char* buf, size_t len, unsigned long long id) {
  static const char head[] =
      "{\"v\":1,\"kind\":\"PostToolUse\",\"session\":\"3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c\","
      "\"cwd\":\"/home/user/project\",\"tool\":\"Bash\",\"id\":";
  size_t i = 0;
  for (const char* p = head; *p && i < len; p++) buf[i++] = *p;
  char num[24];
  int nl = 0;
  do {
    num[nl++] = (char)('0' + id % 10);
    id /= 10;
  } while (id);
  while (nl && i < len) buf[i++] = num[--nl];
  static const char pad[] = ",\"pad\":\"";
  for (const char* p = pad; *p && i < len; p++) buf[i++] = *p;
  while (i + 3 < len) buf[i++] = 'x';
  if (i < len) buf[i++] = '"';
  if (i < len) buf[i++] = '}';
  if (i < len) buf[i++] = '\n';
}

int main(int argc, char** argv) {
  if (argc != 3) return 64;
  const size_t len = (size_t)atoi(argv[2]);
  if (len < 2 || len > kMaxLine) return 64;
  make_event(ev, len, (unsigned long long)getpid());

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  if (fd < 0 || connect(fd, (struct sockaddr*)&sa, sizeof sa) != 0) return 1;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, ev + off, len - off);
    if (w <= 0) return 2;
    off += (size_t)w;
  }
  char ack[64];
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, ack + got, sizeof ack - got);
    if (r <= 0) return 3;
    if (memchr(ack + got, '\n', (size_t)r)) return 0;
    got += (size_t)r;
    if (got == sizeof ack) got = 0;
  }
}
