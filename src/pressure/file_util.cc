// Copyright (c) uttm developers.

#include "pressure/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace uttm::internal {

Result<std::string> ReadFileToString(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status(err == ENOENT ? Errc::kNotFound : Errc::kIo,
                  "open " + path + ": " + std::strerror(err));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return Status(Errc::kIo, "read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

Result<std::uint64_t> ReadU64File(const std::string& path) {
  UTTM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text == "max") return UINT64_MAX;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return Status(Errc::kIo, path + ": not a number: '" + text + "'");
  }
  return v;
}

Status WriteFileOnce(const std::string& path, std::string_view data) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status(ErrcFromErrno(err), "open " + path + ": " + std::strerror(err));
  }
  ssize_t n = write(fd, data.data(), data.size());
  const int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(data.size())) {
    return Status(n < 0 ? ErrcFromErrno(err) : Errc::kIo,
                  "write " + path + ": " + (n < 0 ? std::strerror(err) : "short write"));
  }
  return Status::Ok();
}

bool FindKeyValue(std::string_view text, std::string_view key, std::uint64_t* value) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() > key.size() && line.substr(0, key.size()) == key &&
        (line[key.size()] == ' ' || line[key.size()] == ':')) {
      std::string_view rest = line.substr(key.size() + 1);
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      std::uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
      if (ec != std::errc()) return false;
      (void)ptr;
      *value = v;
      return true;
    }
  }
  return false;
}

}  // namespace uttm::internal
