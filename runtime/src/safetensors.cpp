//===- safetensors.cpp - Memory-mapped safetensors checkpoints ------------===//

#include "qwen_rt/safetensors.h"
#include "qwen_rt/error.h"
#include "qwen_rt/json_input.h"
#include "qwen_rt/limits.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace qwen::rt {

namespace {

constexpr uint64_t MaxHeaderBytes = 100ull * 1024 * 1024;
constexpr const char *IndexFileName = "model.safetensors.index.json";
constexpr const char *SingleFileName = "model.safetensors";

uint64_t fnv1a64(const uint8_t *Data, size_t N) {
  uint64_t H = 0xcbf29ce484222325ull;
  for (size_t I = 0; I < N; ++I) {
    H ^= Data[I];
    H *= 0x100000001b3ull;
  }
  return H;
}

uint64_t readLE64(const uint8_t *P) {
  uint64_t V = 0;
  for (int I = 7; I >= 0; --I)
    V = (V << 8) | P[I];
  return V;
}

std::string errnoText() { return std::strerror(errno); }

/// An open file descriptor, closed on scope exit.
struct FileHandle {
  int Fd = -1;
  explicit FileHandle(int Fd) : Fd(Fd) {}
  FileHandle(const FileHandle &) = delete;
  FileHandle &operator=(const FileHandle &) = delete;
  ~FileHandle() {
    if (Fd >= 0)
      ::close(Fd);
  }
};

/// Opens `Path` for reading and returns its size.
int openForRead(const std::string &Path, uint64_t &Size) {
  int Fd = ::open(Path.c_str(), O_RDONLY | O_CLOEXEC);
  if (Fd < 0)
    throw Error("cannot open safetensors file " + Path + ": " + errnoText());
  struct stat St;
  if (::fstat(Fd, &St) != 0) {
    std::string Msg = errnoText();
    ::close(Fd);
    throw Error("cannot stat safetensors file " + Path + ": " + Msg);
  }
  if (!S_ISREG(St.st_mode)) {
    ::close(Fd);
    throw Error("safetensors file " + Path + " is not a regular file");
  }
  Size = static_cast<uint64_t>(St.st_size);
  return Fd;
}

/// Checks the 8-byte header length against the file size and returns it.
uint64_t checkHeaderLength(const std::string &Path, uint64_t FileSize, const uint8_t *First8) {
  uint64_t HeaderLen = readLE64(First8);
  if (HeaderLen > MaxHeaderBytes)
    throw Error("safetensors file " + Path + " has an absurd header length of " +
                std::to_string(HeaderLen) + " bytes (more than " + std::to_string(MaxHeaderBytes) +
                "); the file is corrupt or not a safetensors file");
  if (HeaderLen > FileSize - 8)
    throw Error("safetensors file " + Path + " has a header length of " +
                std::to_string(HeaderLen) + " bytes but the file has only " +
                std::to_string(FileSize) +
                " bytes; the file is truncated or not a safetensors file");
  return HeaderLen;
}

void checkMinimumSize(const std::string &Path, uint64_t FileSize) {
  if (FileSize < 8)
    throw Error("safetensors file " + Path + " is too small (" + std::to_string(FileSize) +
                " bytes); it must start with an 8-byte header length");
}

std::string shapeText(const std::vector<int64_t> &Shape) {
  std::string S = "[";
  for (size_t I = 0; I < Shape.size(); ++I)
    S += (I ? ", " : "") + std::to_string(Shape[I]);
  return S + "]";
}

bool readExactly(int Fd, void *Buf, size_t N, uint64_t Offset) {
  auto *P = static_cast<uint8_t *>(Buf);
  while (N > 0) {
    ssize_t R = ::pread(Fd, P, N, static_cast<off_t>(Offset));
    if (R < 0 && errno == EINTR)
      continue;
    if (R <= 0)
      return false;
    P += R;
    N -= static_cast<size_t>(R);
    Offset += static_cast<uint64_t>(R);
  }
  return true;
}

} // namespace

//===----------------------------------------------------------------------===//
// TensorView
//===----------------------------------------------------------------------===//

int64_t TensorView::numel() const {
  int64_t N = 1;
  for (int64_t D : shape)
    N *= D;
  return N;
}

//===----------------------------------------------------------------------===//
// SafetensorsArchive
//===----------------------------------------------------------------------===//

/// One mmap'd file.
struct SafetensorsArchive::Mapping {
  void *Base = nullptr;
  size_t Size = 0;
  std::string Path;

  Mapping() = default;
  Mapping(const Mapping &) = delete;
  Mapping &operator=(const Mapping &) = delete;
  ~Mapping() {
    if (Base && Size)
      ::munmap(Base, Size);
  }
};

SafetensorsArchive::SafetensorsArchive(SafetensorsArchive &&) noexcept = default;
SafetensorsArchive &SafetensorsArchive::operator=(SafetensorsArchive &&) noexcept = default;
SafetensorsArchive::~SafetensorsArchive() = default;

namespace {

/// Parses and validates the header of a mapped file, returning its tensors.
std::vector<TensorView> parseHeader(const std::string &Path, const uint8_t *Base, uint64_t FileSize,
                                    uint64_t &HeaderHash) {
  checkMinimumSize(Path, FileSize);
  uint64_t HeaderLen = checkHeaderLength(Path, FileSize, Base);
  const uint8_t *HeaderBytes = Base + 8;
  HeaderHash = fnv1a64(HeaderBytes, HeaderLen);

  nlohmann::json Header = parseUntrustedJson(
      std::string_view(reinterpret_cast<const char *>(HeaderBytes), HeaderLen),
      "the JSON header of safetensors file " + Path);
  if (!Header.is_object())
    throw Error("safetensors file " + Path + " has a JSON header that is not an object");

  const uint64_t DataStart = 8 + HeaderLen;
  const uint64_t DataSize = FileSize - DataStart;
  std::vector<TensorView> Views;
  Views.reserve(Header.size());
  for (auto It = Header.begin(); It != Header.end(); ++It) {
    const std::string &Name = It.key();
    if (Name == "__metadata__")
      continue;
    const std::string Where = "safetensors file " + Path + ": tensor '" + Name + "'";
    const nlohmann::json &Entry = It.value();
    if (!Entry.is_object())
      throw Error(Where + " has a header entry that is not an object");

    auto DTypeIt = Entry.find("dtype");
    if (DTypeIt == Entry.end() || !DTypeIt->is_string())
      throw Error(Where + " has no string 'dtype'");
    std::string DTypeName = DTypeIt->get<std::string>();
    std::optional<DType> Type = parseSafetensorsDType(DTypeName);
    if (!Type)
      throw Error(Where + " has unknown dtype '" + DTypeName +
                  "' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");

    auto ShapeIt = Entry.find("shape");
    if (ShapeIt == Entry.end() || !ShapeIt->is_array())
      throw Error(Where + " has no 'shape' array");
    if (ShapeIt->size() > limits::kMaxTensorRank)
      throw Error(Where + " has " + std::to_string(ShapeIt->size()) + " dimensions; at most " +
                  std::to_string(limits::kMaxTensorRank) + " are supported");
    std::vector<int64_t> Shape;
    uint64_t Numel = 1;
    bool NumelOverflow = false;
    for (const nlohmann::json &D : *ShapeIt) {
      if (!D.is_number_integer() ||
          (D.is_number_integer() && !D.is_number_unsigned() && D.get<int64_t>() < 0))
        throw Error(Where + " has a shape entry that is not a non-negative integer: " + jsonExcerpt(D));
      uint64_t Dim = D.get<uint64_t>();
      if (Dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(Where + " has an absurd dimension " + std::to_string(Dim));
      Shape.push_back(static_cast<int64_t>(Dim));
      if (Dim != 0 && Numel > std::numeric_limits<uint64_t>::max() / Dim)
        NumelOverflow = true;
      else
        Numel *= Dim;
    }

    auto OffIt = Entry.find("data_offsets");
    if (OffIt == Entry.end() || !OffIt->is_array() || OffIt->size() != 2 ||
        !(*OffIt)[0].is_number_unsigned() || !(*OffIt)[1].is_number_unsigned())
      throw Error(Where + " needs 'data_offsets' as two non-negative integers [begin, end]");
    uint64_t Begin = (*OffIt)[0].get<uint64_t>();
    uint64_t End = (*OffIt)[1].get<uint64_t>();
    if (End < Begin)
      throw Error(Where + " has data_offsets [" + std::to_string(Begin) + ", " +
                  std::to_string(End) + "] whose end is before its begin");
    if (End > DataSize)
      throw Error(Where + " needs bytes [" + std::to_string(Begin) + ", " + std::to_string(End) +
                  ") of the data section, so the file should have at least " +
                  std::to_string(DataStart + End) + " bytes, but it has " +
                  std::to_string(FileSize) + "; the file is truncated");
    uint64_t NBytes = End - Begin;
    uint64_t ElemSize = dtypeSize(*Type);
    if (NumelOverflow || Numel > std::numeric_limits<uint64_t>::max() / ElemSize ||
        Numel * ElemSize != NBytes)
      throw Error(Where + " is mis-shaped: shape " + shapeText(Shape) + " of " + DTypeName +
                  " needs " +
                  (NumelOverflow ? std::string("more than 2^64")
                                 : std::to_string(Numel) + " x " + std::to_string(ElemSize) +
                                       " = " + std::to_string(Numel * ElemSize)) +
                  " bytes, but data_offsets span " + std::to_string(NBytes) + " bytes");

    TensorView V;
    V.name = Name;
    V.dtype = *Type;
    V.shape = std::move(Shape);
    V.data = Base + DataStart + Begin;
    V.nbytes = static_cast<size_t>(NBytes);
    V.file = Path;
    Views.push_back(std::move(V));
  }

  // Tensors must not share bytes: a write through one (a converted copy is
  // never written back, but a checkpoint that aliases tensors is corrupt or
  // crafted) and checksums over "distinct" data would both be lies.
  std::vector<const TensorView *> ByStart;
  for (const TensorView &V : Views)
    if (V.nbytes)
      ByStart.push_back(&V);
  std::sort(ByStart.begin(), ByStart.end(),
            [](const TensorView *A, const TensorView *B) { return A->data < B->data; });
  for (size_t I = 1; I < ByStart.size(); ++I) {
    const TensorView &Prev = *ByStart[I - 1], &Next = *ByStart[I];
    if (Prev.data + Prev.nbytes > Next.data) {
      uint64_t PrevBegin = uint64_t(Prev.data - (Base + DataStart));
      uint64_t NextBegin = uint64_t(Next.data - (Base + DataStart));
      throw Error("safetensors file " + Path + ": the data of tensor '" + Prev.name + "' [" +
                  std::to_string(PrevBegin) + ", " + std::to_string(PrevBegin + Prev.nbytes) +
                  ") overlaps that of tensor '" + Next.name + "' [" + std::to_string(NextBegin) + ", " +
                  std::to_string(NextBegin + Next.nbytes) + ")");
    }
  }
  return Views;
}

/// Whether a shard name from weight_map stays inside the checkpoint folder:
/// relative, and with no ".." component (symlinks inside the folder, as in
/// the HuggingFace cache, are the folder owner's choice and are followed).
bool staysInsideFolder(const std::string &Name) {
  fs::path P(Name);
  if (Name.empty() || P.is_absolute() || P.has_root_name() || P.has_root_directory())
    return false;
  for (const fs::path &Part : P)
    if (Part == "..")
      return false;
  return true;
}

std::string baseName(const std::string &Path) { return fs::path(Path).filename().string(); }

} // namespace

std::vector<TensorView> parseSafetensorsBytes(const uint8_t *Data, size_t Size, const std::string &Origin) {
  uint64_t HeaderHash = 0;
  return parseHeader(Origin, Data, Size, HeaderHash);
}

namespace {
/// Counts the elements of `N` raw values whose exponent bits are all ones.
template <typename Bits>
NonFiniteValues countNonFinite(const uint8_t *Data, int64_t N, Bits ExponentMask) {
  auto Load = [&](int64_t I) {
    Bits V;
    std::memcpy(&V, Data + I * int64_t(sizeof(Bits)), sizeof(Bits));
    return V;
  };
  // A branch-free count the compiler vectorizes; the first index is only
  // looked for in the rare tensor that has one.
  NonFiniteValues Found;
  constexpr int64_t Block = 1 << 16; // a narrow counter per block vectorizes wider
  for (int64_t Begin = 0; Begin < N; Begin += Block) {
    uint32_t InBlock = 0;
    for (int64_t I = Begin, End = std::min(N, Begin + Block); I < End; ++I)
      InBlock += (Load(I) & ExponentMask) == ExponentMask;
    Found.count += InBlock;
  }
  for (int64_t I = 0; Found.count && I < N && Found.firstIndex < 0; ++I)
    if ((Load(I) & ExponentMask) == ExponentMask)
      Found.firstIndex = I;
  return Found;
}
} // namespace

NonFiniteValues findNonFinite(const TensorView &T) {
  int64_t N = int64_t(T.nbytes / dtypeSize(T.dtype));
  switch (T.dtype) {
  case DType::F32:
    return countNonFinite<uint32_t>(T.data, N, 0x7f800000u);
  case DType::F16:
    return countNonFinite<uint16_t>(T.data, N, 0x7c00u);
  case DType::BF16:
    return countNonFinite<uint16_t>(T.data, N, 0x7f80u);
  case DType::F64:
    return countNonFinite<uint64_t>(T.data, N, 0x7ff0000000000000ull);
  default:
    return {};
  }
}

SafetensorsArchive SafetensorsArchive::openFile(const std::string &Path) {
  SafetensorsArchive A;
  A.Source = Path;
  // openFile is also the building block of openDir; name = file name.
  uint64_t Size = 0;
  FileHandle F(openForRead(Path, Size));
  checkMinimumSize(Path, Size);
  auto M = std::make_unique<Mapping>();
  M->Path = Path;
  void *Base = ::mmap(nullptr, Size, PROT_READ, MAP_PRIVATE, F.Fd, 0);
  if (Base == MAP_FAILED)
    throw Error("cannot mmap safetensors file " + Path + " (" + std::to_string(Size) +
                " bytes): " + errnoText());
  M->Base = Base;
  M->Size = Size;

  SafetensorsFileInfo Info;
  Info.name = baseName(Path);
  Info.size = Size;
  std::vector<TensorView> Views =
      parseHeader(Path, static_cast<const uint8_t *>(Base), Size, Info.headerHash);
  for (TensorView &V : Views) {
    std::string Name = V.name;
    A.Tensors.emplace(std::move(Name), std::move(V));
  }
  A.Files.push_back(std::move(Info));
  A.Mappings.push_back(std::move(M));
  return A;
}

SafetensorsArchive SafetensorsArchive::openDir(const std::string &Dir) {
  std::error_code EC;
  if (!fs::is_directory(Dir, EC))
    throw Error("checkpoint folder " + Dir + " does not exist or is not a folder");
  fs::path DirPath(Dir);

  fs::path IndexPath = DirPath / IndexFileName;
  if (fs::exists(IndexPath, EC)) {
    std::string IndexStr = IndexPath.string();
    nlohmann::json Index = readUntrustedJsonFile(IndexStr);
    if (!Index.is_object() || !Index.contains("weight_map") || !Index["weight_map"].is_object())
      throw Error(IndexStr + " has no 'weight_map' object");
    const nlohmann::json &WeightMap = Index["weight_map"];

    // Shards in sorted order (model-00001-of-0000N, ...).
    std::set<std::string> ShardNames;
    for (auto It = WeightMap.begin(); It != WeightMap.end(); ++It) {
      if (!It.value().is_string())
        throw Error(IndexStr + ": weight_map entry for tensor '" + It.key() +
                    "' is not a file name string");
      const std::string &Shard = It.value().get<std::string>();
      if (!staysInsideFolder(Shard))
        throw Error(IndexStr + ": weight_map entry for tensor '" + It.key() + "' names the file '" +
                    Shard + "', which is outside the checkpoint folder (shard names must be relative "
                    "paths without '..')");
      ShardNames.insert(Shard);
    }
    if (ShardNames.empty())
      throw Error(IndexStr + " has an empty weight_map");

    SafetensorsArchive A;
    A.Source = Dir;
    for (const std::string &Shard : ShardNames) {
      fs::path ShardPath = DirPath / Shard;
      if (!fs::exists(ShardPath, EC)) {
        std::string Example;
        for (auto It = WeightMap.begin(); It != WeightMap.end(); ++It)
          if (It.value() == Shard) {
            Example = It.key();
            break;
          }
        throw Error("checkpoint " + Dir + ": shard file " + ShardPath.string() + " listed in " +
                    IndexFileName + " (for tensor '" + Example + "' and others) does not exist");
      }
      SafetensorsArchive Part = openFile(ShardPath.string());
      Part.Files[0].name = Shard;
      for (auto &[Name, View] : Part.Tensors) {
        auto Existing = A.Tensors.find(Name);
        if (Existing != A.Tensors.end()) {
          // weight_map decides which shard owns a duplicated tensor.
          auto Owner = WeightMap.find(Name);
          if (Owner == WeightMap.end())
            throw Error("checkpoint " + Dir + ": tensor '" + Name + "' is in both " +
                        Existing->second.file + " and " + View.file +
                        " and weight_map does not say which one to use");
          if (Owner->get<std::string>() == Shard)
            Existing->second = View;
          continue;
        }
        A.Tensors.emplace(Name, View);
      }
      A.Files.push_back(std::move(Part.Files[0]));
      A.Mappings.push_back(std::move(Part.Mappings[0]));
    }
    // Every tensor weight_map names must be in the shard it names.
    for (auto It = WeightMap.begin(); It != WeightMap.end(); ++It) {
      auto T = A.Tensors.find(It.key());
      std::string Shard = It.value().get<std::string>();
      if (T == A.Tensors.end() || fs::path(T->second.file) != DirPath / Shard)
        throw Error("checkpoint " + Dir + ": " + IndexFileName + " maps tensor '" + It.key() +
                    "' to " + Shard + ", but that file has no such tensor");
    }
    return A;
  }

  fs::path Single = DirPath / SingleFileName;
  if (fs::exists(Single, EC)) {
    SafetensorsArchive A = openFile(Single.string());
    A.Source = Dir;
    return A;
  }

  std::vector<std::string> Found;
  for (const fs::directory_entry &E : fs::directory_iterator(DirPath, EC))
    if (E.path().extension() == ".safetensors")
      Found.push_back(E.path().filename().string());
  if (EC)
    throw Error("cannot list checkpoint folder " + Dir + ": " + EC.message());
  if (Found.empty())
    throw Error("checkpoint " + Dir + " has no " + IndexFileName + ", no " + SingleFileName +
                " and no other *.safetensors file");
  if (Found.size() > 1) {
    std::sort(Found.begin(), Found.end());
    std::string List;
    for (const std::string &F : Found)
      List += (List.empty() ? "" : ", ") + F;
    throw Error("checkpoint " + Dir + " has several *.safetensors files (" + List + ") but no " +
                IndexFileName + " saying how they fit together");
  }
  SafetensorsArchive A = openFile((DirPath / Found[0]).string());
  A.Source = Dir;
  return A;
}

const TensorView *SafetensorsArchive::find(const std::string &Name) const {
  auto It = Tensors.find(Name);
  return It == Tensors.end() ? nullptr : &It->second;
}

const TensorView &SafetensorsArchive::get(const std::string &Name) const {
  if (const TensorView *V = find(Name))
    return *V;
  throw Error("checkpoint " + Source + " has no tensor '" + Name + "'");
}

std::vector<std::string> SafetensorsArchive::names() const {
  std::vector<std::string> Names;
  Names.reserve(Tensors.size());
  for (const auto &KV : Tensors)
    Names.push_back(KV.first);
  std::sort(Names.begin(), Names.end());
  return Names;
}

const std::vector<SafetensorsFileInfo> &SafetensorsArchive::files() const { return Files; }

//===----------------------------------------------------------------------===//
// probeSafetensorsFile
//===----------------------------------------------------------------------===//

SafetensorsFileInfo probeSafetensorsFile(const std::string &Path) {
  uint64_t Size = 0;
  FileHandle F(openForRead(Path, Size));
  checkMinimumSize(Path, Size);
  uint8_t First8[8];
  if (!readExactly(F.Fd, First8, 8, 0))
    throw Error("cannot read the header length of safetensors file " + Path);
  uint64_t HeaderLen = checkHeaderLength(Path, Size, First8);
  std::vector<uint8_t> Header(HeaderLen);
  if (HeaderLen && !readExactly(F.Fd, Header.data(), HeaderLen, 8))
    throw Error("cannot read the " + std::to_string(HeaderLen) +
                "-byte header of safetensors file " + Path);
  SafetensorsFileInfo Info;
  Info.name = baseName(Path);
  Info.size = Size;
  Info.headerHash = fnv1a64(Header.data(), Header.size());
  return Info;
}

//===----------------------------------------------------------------------===//
// writeSafetensors
//===----------------------------------------------------------------------===//

void writeSafetensors(const std::string &Path, const std::vector<TensorToWrite> &Tensors,
                      const std::map<std::string, std::string> &Metadata) {
  nlohmann::ordered_json Header = nlohmann::ordered_json::object();
  if (!Metadata.empty()) {
    nlohmann::ordered_json Meta = nlohmann::ordered_json::object();
    for (const auto &[K, V] : Metadata)
      Meta[K] = V;
    Header["__metadata__"] = std::move(Meta);
  }
  std::set<std::string> Seen;
  std::vector<uint64_t> Sizes;
  uint64_t Offset = 0;
  for (const TensorToWrite &T : Tensors) {
    if (T.name == "__metadata__" || T.name.empty())
      throw Error("writeSafetensors " + Path + ": invalid tensor name '" + T.name + "'");
    if (!Seen.insert(T.name).second)
      throw Error("writeSafetensors " + Path + ": tensor '" + T.name + "' given twice");
    uint64_t Numel = 1;
    for (int64_t D : T.shape) {
      if (D < 0)
        throw Error("writeSafetensors " + Path + ": tensor '" + T.name +
                    "' has a negative dimension in shape " + shapeText(T.shape));
      Numel *= static_cast<uint64_t>(D);
    }
    uint64_t NBytes = Numel * dtypeSize(T.dtype);
    if (NBytes && !T.data)
      throw Error("writeSafetensors " + Path + ": tensor '" + T.name + "' has no data");
    std::string StName = dtypeName(T.dtype);
    std::transform(StName.begin(), StName.end(), StName.begin(),
                   [](unsigned char C) { return static_cast<char>(std::toupper(C)); });
    if (T.dtype == DType::F8E4M3)
      StName = "F8_E4M3"; // the safetensors spelling (the manifest's is f8e4m3)
    nlohmann::ordered_json Entry;
    Entry["dtype"] = StName;
    Entry["shape"] = T.shape;
    Entry["data_offsets"] = {Offset, Offset + NBytes};
    Header[T.name] = std::move(Entry);
    Sizes.push_back(NBytes);
    Offset += NBytes;
  }
  std::string HeaderText = Header.dump();
  // Pad with spaces so the data section starts 8-byte aligned.
  while ((8 + HeaderText.size()) % 8 != 0)
    HeaderText.push_back(' ');

  std::FILE *Out = std::fopen(Path.c_str(), "wb");
  if (!Out)
    throw Error("cannot create safetensors file " + Path + ": " + errnoText());
  bool Ok = true;
  uint8_t Len[8];
  uint64_t L = HeaderText.size();
  for (int I = 0; I < 8; ++I)
    Len[I] = static_cast<uint8_t>(L >> (8 * I));
  Ok &= std::fwrite(Len, 1, 8, Out) == 8;
  Ok &= std::fwrite(HeaderText.data(), 1, HeaderText.size(), Out) == HeaderText.size();
  for (size_t I = 0; I < Tensors.size() && Ok; ++I)
    if (Sizes[I])
      Ok &= std::fwrite(Tensors[I].data, 1, Sizes[I], Out) == Sizes[I];
  Ok &= std::fclose(Out) == 0;
  if (!Ok)
    throw Error("cannot write safetensors file " + Path + ": " + errnoText());
}

} // namespace qwen::rt
