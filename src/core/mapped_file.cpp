#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace ffn {

namespace {

// The live mappings, for release_mapped_pages to tell mapped from anonymous
// memory. Never destroyed: a MappedFile with static storage (a test's
// shared model) is unmapped after function-local statics are gone.
struct Mapping {
  uintptr_t begin, end;
};
std::mutex& mappings_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::vector<Mapping>& mappings() {
  static auto* live = new std::vector<Mapping>;
  return *live;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(path, std::string("cannot mmap: ") + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
    const std::lock_guard<std::mutex> lock(mappings_mutex());
    mappings().push_back({reinterpret_cast<uintptr_t>(data_), reinterpret_cast<uintptr_t>(data_) + size_});
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (!data_) return;
  {
    const std::lock_guard<std::mutex> lock(mappings_mutex());
    auto& live = mappings();
    live.erase(std::remove_if(live.begin(), live.end(),
                              [&](const Mapping& m) { return m.begin == reinterpret_cast<uintptr_t>(data_); }),
               live.end());
  }
  ::munmap(const_cast<uint8_t*>(data_), size_);
}

void release_mapped_pages(const void* p, size_t n) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::lock_guard<std::mutex> lock(mappings_mutex());
  for (const Mapping& m : mappings()) {
    if (begin < m.begin || end > m.end) continue;
    // Whole pages only: a neighbouring tensor may share the edge pages.
    const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
    // A read-only private file mapping never written: MADV_DONTNEED only
    // drops the page-table entries, the data stays in the file.
    if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
    return;
  }
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, "read error");
  return ss.str();
}

std::string read_text_file_prefix(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string out(max_bytes, '\0');
  in.read(out.data(), static_cast<std::streamsize>(max_bytes));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

}  // namespace ffn
