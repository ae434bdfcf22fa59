// replica_file.cpp — the replica file (FORMAT.md): its layout, the writer (temporary file, fsync,
// rename, directory fsync; blobs checksummed and written straight from storage memory) and the
// verifying reader over memory or a file descriptor (blobs read straight into new storages).
#include "stagekit/replicate/replica_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "byte_io.h"
#include "manifest_decoder.h"
#include "manifest_format.h"
#include "stagekit/core/error.h"

namespace stagekit::replicate {
namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr std::array<char, 8> kMagic = {'S', 'K', 'R', 'E', 'P', 'L', 'I', 'C'};
constexpr std::size_t kHeaderBytes = 128;
constexpr std::size_t kHeaderChecksumOffset = 120;
constexpr std::size_t kReservedOffset = 88;
constexpr std::size_t kTableAlignment = 8;
constexpr std::size_t kTableEntryBytes = 24;               // offset, length, checksum
constexpr std::size_t kChunkBytes = std::size_t{8} << 20;  // unit of checksumming, writing and reading

std::uint64_t align_up(std::uint64_t v, std::uint64_t alignment) { return (v + alignment - 1) / alignment * alignment; }

std::string hex(std::uint64_t v) { return fmt::format("{:#018x}", v); }

struct Header {
  std::uint16_t major = kFormatMajor;
  std::uint16_t minor = kFormatMinor;
  std::int32_t source_rank = -1;
  std::int32_t holder_rank = -1;
  std::uint64_t manifest_offset = kHeaderBytes;
  std::uint64_t manifest_bytes = 0;
  std::uint64_t manifest_checksum = 0;
  std::uint64_t table_offset = 0;
  std::uint64_t storage_count = 0;
  std::uint64_t table_checksum = 0;
  std::uint64_t payload_bytes = 0;
  std::uint64_t file_bytes = 0;
};

struct BlobEntry {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t checksum = 0;
};

std::vector<std::byte> encode_header(const Header& h) {
  ByteWriter w;
  w.raw(kMagic.data(), kMagic.size());
  w.u16(h.major);
  w.u16(h.minor);
  w.u32(static_cast<std::uint32_t>(kHeaderBytes));
  w.i32(h.source_rank);
  w.i32(h.holder_rank);
  w.u64(h.manifest_offset);
  w.u64(h.manifest_bytes);
  w.u64(h.manifest_checksum);
  w.u64(h.table_offset);
  w.u64(h.storage_count);
  w.u64(h.table_checksum);
  w.u64(h.payload_bytes);
  w.u64(h.file_bytes);
  w.zeros(kHeaderChecksumOffset - w.size());
  w.u64(XXH3_64bits(w.bytes().data(), kHeaderChecksumOffset));
  return std::move(w.bytes());
}

// ---- writing -------------------------------------------------------------------------------------

// Where the bytes of a replica go: appended in order, with the header and table patched at the end.
class ReplicaSink {
 public:
  virtual ~ReplicaSink() = default;
  virtual void append(const void* data, std::size_t n) = 0;
  virtual void overwrite(std::uint64_t offset, std::span<const std::byte> bytes) = 0;
  void append_zeros(std::uint64_t n) {
    static constexpr std::array<std::byte, kBlobAlignment> zeros{};
    while (n > 0) {
      const std::size_t step = static_cast<std::size_t>(std::min<std::uint64_t>(n, zeros.size()));
      append(zeros.data(), step);
      n -= step;
    }
  }
};

class MemorySink final : public ReplicaSink {
 public:
  explicit MemorySink(std::size_t expected_bytes) { out_.reserve(expected_bytes); }
  void append(const void* data, std::size_t n) override {
    if (n == 0) return;
    const auto* b = static_cast<const std::byte*>(data);
    out_.insert(out_.end(), b, b + n);
  }
  void overwrite(std::uint64_t offset, std::span<const std::byte> bytes) override {
    if (!bytes.empty()) std::memcpy(out_.data() + offset, bytes.data(), bytes.size());
  }
  std::vector<std::byte> take() { return std::move(out_); }

 private:
  std::vector<std::byte> out_;
};

[[noreturn]] void throw_write_error(const std::filesystem::path& path, std::string_view op, std::uint64_t offset,
                                    int error) {
  throw IoError(
      fmt::format("writing replica {}: {} failed at byte {}: {}", path.string(), op, offset, std::strerror(error)));
}

class FileSink final : public ReplicaSink {
 public:
  FileSink(int fd, const std::filesystem::path& path) : fd_(fd), path_(path) {}
  void append(const void* data, std::size_t n) override {
    const auto* p = static_cast<const std::byte*>(data);
    while (n > 0) {
      const ssize_t done = ::write(fd_, p, n);
      if (done < 0 && errno == EINTR) continue;
      if (done <= 0) throw_write_error(path_, "write", offset_, done < 0 ? errno : EIO);
      p += done;
      n -= static_cast<std::size_t>(done);
      offset_ += static_cast<std::uint64_t>(done);
    }
  }
  void overwrite(std::uint64_t offset, std::span<const std::byte> bytes) override {
    std::size_t at = 0;
    while (at < bytes.size()) {
      const ssize_t done = ::pwrite(fd_, bytes.data() + at, bytes.size() - at, static_cast<off_t>(offset + at));
      if (done < 0 && errno == EINTR) continue;
      if (done <= 0) throw_write_error(path_, "write", offset + at, done < 0 ? errno : EIO);
      at += static_cast<std::size_t>(done);
    }
  }
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

 private:
  int fd_;
  const std::filesystem::path& path_;
  std::uint64_t offset_ = 0;
};

struct XxhStateDeleter {
  void operator()(XXH3_state_t* s) const noexcept { XXH3_freeState(s); }
};
using XxhState = std::unique_ptr<XXH3_state_t, XxhStateDeleter>;

XxhState new_hash_state() {
  XxhState state(XXH3_createState());
  if (!state) throw ResourceExhausted("XXH3_createState: out of memory");
  return state;
}

// Appends one storage's bytes and returns their checksum: host memory is checksummed and written
// in place, chunk by chunk (still in cache for the write); device memory goes through a host chunk.
std::uint64_t append_blob(ReplicaSink& sink, const Storage& storage, XXH3_state_t* state) {
  XXH3_64bits_reset(state);
  const std::size_t n = storage.nbytes();
  Storage bounce;
  if (!storage.device().is_cpu() && n > 0) bounce = Storage::allocate(std::min(n, kChunkBytes));
  for (std::size_t at = 0; at < n; at += kChunkBytes) {
    const std::size_t step = std::min(kChunkBytes, n - at);
    const std::byte* chunk = nullptr;
    if (bounce.defined()) {
      copy_bytes(bounce, 0, storage, at, step);
      chunk = static_cast<const std::byte*>(bounce.data());
    } else {
      chunk = static_cast<const std::byte*>(storage.data()) + at;
    }
    XXH3_64bits_update(state, chunk, step);
    sink.append(chunk, step);
  }
  return XXH3_64bits_digest(state);
}

struct Layout {
  std::uint64_t table_offset = 0;
  std::uint64_t table_end = 0;
  std::vector<std::uint64_t> blob_offsets;
  std::uint64_t file_bytes = 0;
};

// The one layout a replica of this manifest and these storages may have (FORMAT.md, "Layout").
Layout plan_layout(const PackedStateDict& packed) {
  Layout l;
  l.table_offset = align_up(kHeaderBytes + packed.manifest.size(), kTableAlignment);
  l.table_end = l.table_offset + kTableEntryBytes * packed.storages.size();
  std::uint64_t end = l.table_end;
  for (const Storage& s : packed.storages) {
    const std::uint64_t offset = align_up(end, kBlobAlignment);
    l.blob_offsets.push_back(offset);
    end = offset + s.nbytes();
  }
  l.file_bytes = end;
  return l;
}

void check_packed(const PackedStateDict& packed) {
  const std::vector<std::uint64_t> sizes = manifest_storage_sizes(packed.manifest);
  check_argument(sizes.size() == packed.storages.size(),
                 fmt::format("write_replica: the manifest names {} storage(s) but the packed state dict holds {}",
                             sizes.size(), packed.storages.size()));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    check_argument(sizes[i] == packed.storages[i].nbytes(),
                   fmt::format("write_replica: storage {} holds {} byte(s) but the manifest says {}", i,
                               packed.storages[i].nbytes(), sizes[i]));
  }
}

// Writes the whole replica to `sink`: placeholders for the header and table first, then the blobs
// from storage memory, then the table and the header over their placeholders.
std::uint64_t write_replica_to(ReplicaSink& sink, const PackedStateDict& packed, const Layout& layout,
                               const ReplicaWriteOptions& options) {
  const std::uint64_t manifest_end = kHeaderBytes + packed.manifest.size();
  sink.append_zeros(kHeaderBytes);
  sink.append(packed.manifest.data(), packed.manifest.size());
  sink.append_zeros(layout.table_end - manifest_end);  // padding, then the table's placeholder
  std::vector<BlobEntry> entries(packed.storages.size());
  std::uint64_t end = layout.table_end;
  const XxhState state = new_hash_state();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].offset = layout.blob_offsets[i];
    entries[i].length = packed.storages[i].nbytes();
    sink.append_zeros(entries[i].offset - end);
    entries[i].checksum = append_blob(sink, packed.storages[i], state.get());
    end = entries[i].offset + entries[i].length;
  }
  ByteWriter table;
  for (const BlobEntry& e : entries) {
    table.u64(e.offset);
    table.u64(e.length);
    table.u64(e.checksum);
  }
  Header h;
  h.source_rank = options.source_rank;
  h.holder_rank = options.holder_rank;
  h.manifest_bytes = packed.manifest.size();
  h.manifest_checksum = XXH3_64bits(packed.manifest.data(), packed.manifest.size());
  h.table_offset = layout.table_offset;
  h.storage_count = entries.size();
  h.table_checksum = XXH3_64bits(table.bytes().data(), table.size());
  h.payload_bytes = packed.payload_bytes();
  h.file_bytes = layout.file_bytes;
  sink.overwrite(layout.table_offset, table.bytes());
  sink.overwrite(0, encode_header(h));
  return layout.file_bytes;
}

// ---- reading -------------------------------------------------------------------------------------

// Where the bytes of a replica come from.
class ReplicaSource {
 public:
  virtual ~ReplicaSource() = default;
  [[nodiscard]] virtual std::uint64_t size() const = 0;
  virtual void read(std::uint64_t offset, void* out, std::size_t n) const = 0;
};

class MemorySource final : public ReplicaSource {
 public:
  explicit MemorySource(std::span<const std::byte> bytes) : bytes_(bytes) {}
  [[nodiscard]] std::uint64_t size() const override { return bytes_.size(); }
  void read(std::uint64_t offset, void* out, std::size_t n) const override {
    if (n > 0) std::memcpy(out, bytes_.data() + offset, n);
  }

 private:
  std::span<const std::byte> bytes_;
};

class FileSource final : public ReplicaSource {
 public:
  FileSource(int fd, std::uint64_t size, const std::filesystem::path& path) : fd_(fd), size_(size), path_(path) {}
  [[nodiscard]] std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, void* out, std::size_t n) const override {
    auto* p = static_cast<std::byte*>(out);
    std::size_t at = 0;
    while (at < n) {
      const ssize_t done = ::pread(fd_, p + at, n - at, static_cast<off_t>(offset + at));
      if (done < 0 && errno == EINTR) continue;
      if (done < 0) {
        throw IoError(fmt::format("reading replica {}: read failed at byte {}: {}", path_.string(), offset + at,
                                  std::strerror(errno)));
      }
      if (done == 0) {
        throw CorruptionError(
            fmt::format("truncated while reading: the file ends at byte {}, it had {} bytes", offset + at, size_));
      }
      at += static_cast<std::size_t>(done);
    }
  }

 private:
  int fd_;
  std::uint64_t size_;
  const std::filesystem::path& path_;
};

Header read_header(const ReplicaSource& source) {
  if (source.size() < kHeaderBytes) {
    throw CorruptionError(
        fmt::format("truncated: {} bytes, shorter than the {}-byte header", source.size(), kHeaderBytes));
  }
  std::array<std::byte, kHeaderBytes> bytes{};
  source.read(0, bytes.data(), bytes.size());
  ByteReader in(bytes, "header");
  if (std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) in.fail_at(0, "bad magic: not a stagekit replica");
  in.take(kMagic.size(), "the magic");
  Header h;
  h.major = in.u16("the major version");
  h.minor = in.u16("the minor version");
  if (const std::string problem = detail::version_problem(h.major, h.minor); !problem.empty()) in.fail_at(8, problem);
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + kHeaderChecksumOffset, sizeof stored);
  const std::uint64_t computed = XXH3_64bits(bytes.data(), kHeaderChecksumOffset);
  if (stored != computed) {
    in.fail_at(kHeaderChecksumOffset,
               fmt::format("checksum mismatch (stored {}, computed {})", hex(stored), hex(computed)));
  }
  const std::uint32_t header_bytes = in.u32("the header size");
  if (header_bytes != kHeaderBytes)
    in.fail_at(12, fmt::format("header size {}, expected {}", header_bytes, kHeaderBytes));
  h.source_rank = in.i32("the source rank");
  h.holder_rank = in.i32("the holder rank");
  h.manifest_offset = in.u64("the manifest offset");
  h.manifest_bytes = in.u64("the manifest length");
  h.manifest_checksum = in.u64("the manifest checksum");
  h.table_offset = in.u64("the table offset");
  h.storage_count = in.u64("the storage count");
  h.table_checksum = in.u64("the table checksum");
  h.payload_bytes = in.u64("the payload bytes");
  h.file_bytes = in.u64("the file size");
  for (std::size_t i = kReservedOffset; i < kHeaderChecksumOffset; ++i) {
    if (bytes[i] != std::byte{0}) in.fail_at(i, "a reserved byte is not zero");
  }
  if (h.manifest_offset != kHeaderBytes) {
    in.fail_at(24, fmt::format("manifest offset {}, expected {}", h.manifest_offset, kHeaderBytes));
  }
  return h;
}

void check_zero(std::span<const std::byte> bytes, std::uint64_t file_offset) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != std::byte{0}) {
      throw CorruptionError(fmt::format("padding at offset {}: byte {:#04x} is not zero", file_offset + i,
                                        static_cast<unsigned>(bytes[i])));
    }
  }
}

void check_zero_range(const ReplicaSource& source, std::uint64_t begin, std::uint64_t end) {
  std::array<std::byte, kBlobAlignment> buffer{};
  while (begin < end) {
    const std::size_t step = static_cast<std::size_t>(std::min<std::uint64_t>(end - begin, buffer.size()));
    source.read(begin, buffer.data(), step);
    check_zero(std::span(buffer).first(step), begin);
    begin += step;
  }
}

struct VerifiedReplica {
  ReplicaInfo info;
  std::vector<std::byte> manifest;
  std::vector<Storage> storages;  // only when the blobs were loaded
};

enum class BlobMode { load, check_only };

// Reads the table and checks every entry against the one possible layout and the file size.
std::vector<BlobEntry> read_table(std::span<const std::byte> table, const Header& h) {
  ByteReader in(table, "table", h.table_offset);
  std::vector<BlobEntry> entries(h.storage_count);
  std::uint64_t end = h.table_offset + table.size();
  std::uint64_t payload = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    BlobEntry& e = entries[i];
    e.offset = in.u64("a blob offset");
    e.length = in.u64("a blob length");
    e.checksum = in.u64("a blob checksum");
    const std::uint64_t expected = align_up(end, kBlobAlignment);
    if (e.offset != expected) {
      throw CorruptionError(fmt::format("blob {} at offset {}: expected offset {} (the next {}-byte boundary)", i,
                                        e.offset, expected, kBlobAlignment));
    }
    if (e.offset > h.file_bytes || e.length > h.file_bytes - e.offset) {
      throw CorruptionError(fmt::format("blob {} at offset {}: {} byte(s) run past the end of the file ({} bytes)", i,
                                        e.offset, e.length, h.file_bytes));
    }
    end = e.offset + e.length;
    payload += e.length;
  }
  if (end != h.file_bytes) {
    throw CorruptionError(
        fmt::format("table at offset {}: the blobs end at byte {} but the header says the file has {}", h.table_offset,
                    end, h.file_bytes));
  }
  if (payload != h.payload_bytes) {
    throw CorruptionError(fmt::format("header: {} payload bytes, but the blobs hold {}", h.payload_bytes, payload));
  }
  return entries;
}

// Reads (into a new storage, when `into` is defined) or only checksums one blob.
void read_blob(const ReplicaSource& source, std::size_t index, const BlobEntry& e, const Storage& into,
               std::vector<std::byte>& scratch, XXH3_state_t* state) {
  XXH3_64bits_reset(state);
  for (std::uint64_t at = 0; at < e.length; at += kChunkBytes) {
    const auto step = static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, e.length - at));
    std::byte* chunk = nullptr;
    if (into.defined()) {
      chunk = static_cast<std::byte*>(into.data()) + at;
    } else {
      if (scratch.size() < step) scratch.resize(step);
      chunk = scratch.data();
    }
    source.read(e.offset + at, chunk, step);
    XXH3_64bits_update(state, chunk, step);
  }
  const std::uint64_t computed = XXH3_64bits_digest(state);
  if (computed != e.checksum) {
    throw CorruptionError(fmt::format("blob {} at offset {}: checksum mismatch (stored {}, computed {})", index,
                                      e.offset, hex(e.checksum), hex(computed)));
  }
}

// Verifies everything but the manifest's node grammar (which unpacking checks) and, in load mode,
// reads every blob into a new CPU storage.
VerifiedReplica read_verified(const ReplicaSource& source, BlobMode mode) {
  const Header h = read_header(source);
  const std::uint64_t size = source.size();
  if (size < h.file_bytes)
    throw CorruptionError(fmt::format("truncated: {} bytes, header says {}", size, h.file_bytes));
  if (size > h.file_bytes) {
    throw CorruptionError(
        fmt::format("{} bytes, header says {}: {} trailing byte(s)", size, h.file_bytes, size - h.file_bytes));
  }
  if (h.manifest_bytes > h.file_bytes - kHeaderBytes) {
    throw CorruptionError(
        fmt::format("header: the manifest ({} bytes at offset {}) runs past the end of the file ({} bytes)",
                    h.manifest_bytes, kHeaderBytes, h.file_bytes));
  }
  const std::uint64_t manifest_end = kHeaderBytes + h.manifest_bytes;
  if (h.table_offset != align_up(manifest_end, kTableAlignment)) {
    throw CorruptionError(
        fmt::format("header: table offset {}, expected {}", h.table_offset, align_up(manifest_end, kTableAlignment)));
  }
  if (h.table_offset > h.file_bytes || h.storage_count > (h.file_bytes - h.table_offset) / kTableEntryBytes) {
    throw CorruptionError(
        fmt::format("header: a table of {} storage(s) at offset {} runs past the end of the file ({} bytes)",
                    h.storage_count, h.table_offset, h.file_bytes));
  }
  const std::uint64_t table_end = h.table_offset + h.storage_count * kTableEntryBytes;

  // The manifest, its padding and the table: at most the file's size.
  std::vector<std::byte> prefix(table_end - kHeaderBytes);
  source.read(kHeaderBytes, prefix.data(), prefix.size());
  const std::span<const std::byte> all(prefix);
  const auto manifest = all.first(h.manifest_bytes);
  const auto table = all.subspan(h.table_offset - kHeaderBytes);
  if (const std::uint64_t c = XXH3_64bits(manifest.data(), manifest.size()); c != h.manifest_checksum) {
    throw CorruptionError(fmt::format("manifest at offset {}: checksum mismatch (stored {}, computed {})", kHeaderBytes,
                                      hex(h.manifest_checksum), hex(c)));
  }
  check_zero(all.subspan(h.manifest_bytes, h.table_offset - manifest_end), manifest_end);
  if (const std::uint64_t c = XXH3_64bits(table.data(), table.size()); c != h.table_checksum) {
    throw CorruptionError(fmt::format("table at offset {}: checksum mismatch (stored {}, computed {})", h.table_offset,
                                      hex(h.table_checksum), hex(c)));
  }
  const std::vector<BlobEntry> entries = read_table(table, h);
  const std::vector<std::uint64_t> sizes = manifest_storage_sizes(manifest);
  if (sizes.size() != entries.size()) {
    throw CorruptionError(fmt::format("table at offset {}: {} blob(s) but the manifest names {} storage(s)",
                                      h.table_offset, entries.size(), sizes.size()));
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (sizes[i] != entries[i].length) {
      throw CorruptionError(fmt::format("blob {} at offset {}: {} byte(s) but the manifest says {}", i,
                                        entries[i].offset, entries[i].length, sizes[i]));
    }
  }

  VerifiedReplica out;
  out.info.version_major = h.major;
  out.info.version_minor = h.minor;
  out.info.source_rank = h.source_rank;
  out.info.holder_rank = h.holder_rank;
  out.info.file_bytes = h.file_bytes;
  out.info.manifest_bytes = h.manifest_bytes;
  out.info.payload_bytes = h.payload_bytes;
  out.info.storages = entries.size();
  prefix.resize(h.manifest_bytes);  // keep the manifest, drop the padding and the table
  out.manifest = std::move(prefix);
  const XxhState state = new_hash_state();
  std::vector<std::byte> scratch;
  std::uint64_t end = table_end;
  if (mode == BlobMode::load) out.storages.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const BlobEntry& e = entries[i];
    check_zero_range(source, end, e.offset);
    Storage storage;
    if (mode == BlobMode::load) storage = Storage::allocate(e.length);
    read_blob(source, i, e, storage, scratch, state.get());
    if (mode == BlobMode::load) out.storages.push_back(std::move(storage));
    end = e.offset + e.length;
  }
  return out;
}

// Runs `fn` with the replica at `path` open as a source; names the path in every error.
template <class Fn>
auto with_replica_file(const std::filesystem::path& path, Fn fn) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("reading replica {}: open failed: {}", path.string(), std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw IoError(fmt::format("reading replica {}: fstat failed: {}", path.string(), std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) throw IoError(fmt::format("reading replica {}: not a regular file", path.string()));
  const FileSource source(fd, static_cast<std::uint64_t>(st.st_size), path);
  try {
    return fn(source);
  } catch (const CorruptionError& e) {
    throw CorruptionError(fmt::format("replica {}: {}", path.string(), e.detail()), e.path());
  }
}

Value decode_verified(const ReplicaSource& source, ReplicaInfo* info) {
  VerifiedReplica replica = read_verified(source, BlobMode::load);
  Value tree = detail::decode_manifest(replica.manifest, replica.storages, {});
  if (info != nullptr) *info = replica.info;
  return tree;
}

}  // namespace

std::filesystem::path replica_temporary_path(const std::filesystem::path& path) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  return tmp;
}

std::uint64_t write_replica(const std::filesystem::path& path, const PackedStateDict& packed,
                            const ReplicaWriteOptions& options) {
  check_packed(packed);
  const Layout layout = plan_layout(packed);
  const std::filesystem::path tmp = replica_temporary_path(path);
  int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) throw_write_error(path, "open", 0, errno);
  try {
    FileSink sink(fd, path);
    write_replica_to(sink, packed, layout, options);
    if (options.sync && ::fsync(fd) != 0) throw_write_error(path, "fsync", sink.offset(), errno);
    const int closing = fd;
    fd = -1;
    if (::close(closing) != 0) throw_write_error(path, "close", sink.offset(), errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_write_error(path, "rename", sink.offset(), errno);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (options.sync) {
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) throw_write_error(path, "open directory", layout.file_bytes, errno);
    const int synced = ::fsync(dir_fd);
    const int error = errno;
    ::close(dir_fd);
    if (synced != 0) throw_write_error(path, "fsync directory", layout.file_bytes, error);
  }
  return layout.file_bytes;
}

std::vector<std::byte> encode_replica(const PackedStateDict& packed, const ReplicaWriteOptions& options) {
  check_packed(packed);
  const Layout layout = plan_layout(packed);
  MemorySink sink(layout.file_bytes);
  write_replica_to(sink, packed, layout, options);
  return sink.take();
}

Value decode_replica(std::span<const std::byte> file_bytes, ReplicaInfo* info) {
  return decode_verified(MemorySource(file_bytes), info);
}

Value load_replica(const std::filesystem::path& path, ReplicaInfo* info) {
  return with_replica_file(path, [&](const ReplicaSource& source) { return decode_verified(source, info); });
}

ReplicaInfo inspect_replica(const std::filesystem::path& path) {
  return with_replica_file(path, [&](const ReplicaSource& source) {
    const VerifiedReplica replica = read_verified(source, BlobMode::check_only);
    // The manifest's nodes are checked by unpacking them over storages of the right sizes that hold
    // no memory: no tensor data is touched, so none needs to be read or allocated.
    std::vector<Storage> placeholders;
    placeholders.reserve(replica.info.storages);
    for (std::uint64_t size : manifest_storage_sizes(replica.manifest)) {
      placeholders.push_back(Storage::from_data_ptr(
          DataPtr(nullptr, static_cast<std::size_t>(size), Device::cpu(), MemoryKind::pageable, nullptr, nullptr)));
    }
    (void)detail::decode_manifest(replica.manifest, placeholders, {});
    return replica.info;
  });
}

}  // namespace stagekit::replicate
