/* bench/lone_ack: what a server spends answering one lone event, without process start-up
 * noise (docs/benchmarks.md, "Run L-lat"). For each of N rounds and each target in turn:
 * connect, send one event, read its ack, close, then pause 2 ms (so every event finds the
 * server idle, as a hook's does). Reports the wall time per round trip (p10/p50/p90) and, when
 * a target names its server's pid, that process's CPU time per event per thread (from
 * /proc/PID/task/TID/schedstat, nanoseconds), so the io thread and the store thread show apart.
 *
 *   lone_ack N KIND SOCKET PID [KIND SOCKET PID ...]
 *
 * KIND: "ferry" (a ferryd socket: one EVENT frame of a ~200 B Claude Code Stop payload, new id
 * every time) or "line" (the shared floor's ackserver: the same payload as one line). PID 0:
 * no CPU figures. Exit 0 when every event was acked. LONE_ACK_PAYLOAD=FILE sends FILE's JSON
 * (one line, up to 60 KiB) as the payload instead, e.g. the 20 KB hook of emit_payload_bench. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 8
#define MAX_THREADS 64

static const char kStopPayload[] =
    "{\"session_id\":\"3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41\",\"transcript_path\":\"/home/u/"
    ".claude/projects/p/3f2c9a1e.jsonl\",\"cwd\":\"/home/u/src/ferry\",\"hook_event_name\":"
    "\"Stop\"}";

static const char* kPayload = kStopPayload;

struct threads {
  int n;
  int tid[MAX_THREADS];
  unsigned long long ns[MAX_THREADS];
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void snap(int pid, struct threads* t) {
  char path[64];
  t->n = 0;
  if (pid <= 0) return;
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR* d = opendir(path);
  if (!d) return;
  struct dirent* e;
  while ((e = readdir(d)) && t->n < MAX_THREADS) {
    if (e->d_name[0] == '.') continue;
    char p[320];
    snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", pid, e->d_name);
    FILE* f = fopen(p, "r");
    if (!f) continue;
    unsigned long long ns = 0;
    if (fscanf(f, "%llu", &ns) == 1) {
      t->tid[t->n] = atoi(e->d_name);
      t->ns[t->n++] = ns;
    }
    fclose(f);
  }
  closedir(d);
}

/* One round trip; returns its wall time in ms, or -1. */
static double one(const char* kind, const char* sock, unsigned long long id) {
  static char buf[65536], body[65000];
  int n;
  const int ferry = strcmp(kind, "ferry") == 0;
  if (ferry) {
    const int bl = snprintf(body, sizeof body,
                            "{\"v\":1,\"event\":{\"id\":\"%032llx\",\"ts\":1796390579598966697,"
                            "\"source\":\"claude-code\",\"kind\":\"Stop\",\"cwd\":\"/tmp\","
                            "\"host\":\"vm\",\"pid\":1,\"payload\":%s}}",
                            id, kPayload);
    const unsigned len = (unsigned)bl + 1; /* type byte + body */
    buf[0] = (char)(len & 255);
    buf[1] = (char)(len >> 8);
    buf[2] = (char)(len >> 16);
    buf[3] = 0;
    buf[4] = 2; /* EVENT */
    memcpy(buf + 5, body, (size_t)bl);
    n = 5 + bl;
  } else {
    n = snprintf(buf, sizeof buf, "%s\n", kPayload);
  }
  const double t0 = now_ms();
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
  if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof a) != 0) return -1;
  if (write(fd, buf, (size_t)n) != n) return -1;
  char r[512];
  int got = 0;
  for (;;) {
    const ssize_t k = read(fd, r + got, sizeof r - (size_t)got);
    if (k <= 0) {
      close(fd);
      return -1;
    }
    got += (int)k;
    if (ferry && got >= 5) {
      const unsigned len = (unsigned char)r[0] | ((unsigned)(unsigned char)r[1] << 8);
      if (got >= 4 + (int)len) {
        if (r[4] != 4) { /* not an ACK */
          close(fd);
          return -1;
        }
        break;
      }
    } else if (!ferry && memchr(r, '\n', (size_t)got)) {
      break;
    }
  }
  const double ms = now_ms() - t0;
  close(fd);
  return ms;
}

int main(int argc, char** argv) {
  if (argc < 5 || (argc - 2) % 3 != 0 || (argc - 2) / 3 > MAX_TARGETS) {
    fprintf(stderr, "usage: lone_ack N KIND SOCKET PID [KIND SOCKET PID ...]\n");
    return 2;
  }
  const int n = atoi(argv[1]), k = (argc - 2) / 3;
  if (n <= 0) return 2;
  const char* payload_file = getenv("LONE_ACK_PAYLOAD");
  if (payload_file && *payload_file) {
    static char payload[61440];
    FILE* f = fopen(payload_file, "r");
    const size_t got = f ? fread(payload, 1, sizeof payload - 1, f) : 0;
    if (!f || got == 0 || got == sizeof payload - 1 || memchr(payload, '\n', got)) {
      fprintf(stderr, "lone_ack: %s: want one JSON line of 1 - 60 KiB\n", payload_file);
      return 2;
    }
    fclose(f);
    payload[got] = 0;
    kPayload = payload;
  }
  static struct threads before[MAX_TARGETS], after[MAX_TARGETS];
  double* ms[MAX_TARGETS];
  int failures = 0;
  for (int j = 0; j < k; ++j) {
    ms[j] = calloc((size_t)n, sizeof(double));
    snap(atoi(argv[4 + 3 * j]), &before[j]);
  }
  unsigned long long id = ((unsigned long long)getpid() << 32) ^ (unsigned long long)time(NULL);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < k; ++j) {
      ms[j][i] = one(argv[2 + 3 * j], argv[3 + 3 * j], ++id);
      if (ms[j][i] < 0) failures++;
      usleep(2000);
    }
  }
  for (int j = 0; j < k; ++j) snap(atoi(argv[4 + 3 * j]), &after[j]);
  for (int j = 0; j < k; ++j) {
    qsort(ms[j], (size_t)n, sizeof(double), cmp);
    printf("%-5s %s: p10 %.3f  p50 %.3f  p90 %.3f ms", argv[2 + 3 * j], argv[3 + 3 * j],
           ms[j][n / 10], ms[j][n / 2], ms[j][n * 9 / 10]);
    double total = 0;
    for (int a = 0; a < after[j].n; ++a) {
      for (int b = 0; b < before[j].n; ++b) {
        if (before[j].tid[b] != after[j].tid[a]) continue;
        const double us = (double)(after[j].ns[a] - before[j].ns[b]) / 1e3 / n;
        total += us;
        if (us >= 1.0) printf("  tid %d %.1f us", after[j].tid[a], us);
      }
    }
    if (after[j].n > 0) printf("  | CPU %.1f us/event", total);
    printf("\n");
  }
  if (failures) fprintf(stderr, "lone_ack: %d round trips failed\n", failures);
  return failures ? 1 : 0;
}
