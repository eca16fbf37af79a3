// Replays fuzz inputs without libFuzzer: runs LLVMFuzzerTestOneInput once on every file named
// on the command line, or in a directory named there (not recursive; dot files skipped). Each
// input is passed in a heap block of exactly its size, as libFuzzer does, so ASan sees a read
// past its end. A failed invariant aborts, like under libFuzzer. Exit 1 when a path cannot
// be read. Built into every <target>_replay binary of the gcc builds (tests/fuzz/README.md).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool ReadFile(const std::string& path, std::vector<char>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

bool ListDir(const std::string& dir, std::vector<std::string>* files) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return false;
  std::vector<std::string> names;
  while (const struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) files->push_back(dir + "/" + name);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string path = argv[i];
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      std::fprintf(stderr, "replay: %s: %s\n", path.c_str(), std::strerror(errno));
      return 1;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!ListDir(path, &files)) {
        std::fprintf(stderr, "replay: cannot list %s: %s\n", path.c_str(), std::strerror(errno));
        return 1;
      }
    } else {
      files.push_back(path);
    }
  }
  std::vector<char> bytes;
  for (const std::string& file : files) {
    if (!ReadFile(file, &bytes)) {
      std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
      return 1;
    }
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.c_str(), bytes.size());
    // An exact-size copy: a read one byte past the input is a heap overflow under ASan.
    std::unique_ptr<uint8_t[]> input(new uint8_t[bytes.size()]);
    if (!bytes.empty()) std::memcpy(input.get(), bytes.data(), bytes.size());
    LLVMFuzzerTestOneInput(input.get(), bytes.size());
  }
  std::printf("replay: %zu inputs, 0 failed\n", files.size());
  return 0;
}
