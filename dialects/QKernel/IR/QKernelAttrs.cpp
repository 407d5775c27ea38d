//===- QKernelAttrs.cpp - kernel kinds and launch geometry ------------------===//
#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "qwen_rt/launch_schema.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace qwen::qkernel;
namespace schema = qwen::launch_schema;

#include "qwen/Dialect/QKernel/IR/QKernelEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "qwen/Dialect/QKernel/IR/QKernelAttrs.cpp.inc"

void QKernelDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "qwen/Dialect/QKernel/IR/QKernelAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Grid factors: `[T, 4]`
//===----------------------------------------------------------------------===//

static ParseResult parseGrid(AsmParser &parser, ArrayAttr &grid) {
  Builder builder(parser.getContext());
  SmallVector<Attribute> factors;
  if (parser.parseEqual() ||
      parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&]() -> ParseResult {
        int64_t value;
        OptionalParseResult integer = parser.parseOptionalInteger(value);
        if (integer.has_value()) {
          if (failed(*integer))
            return failure();
          factors.push_back(builder.getI64IntegerAttr(value));
          return success();
        }
        StringRef symbol;
        if (parser.parseKeyword(&symbol))
          return failure();
        factors.push_back(builder.getStringAttr(symbol));
        return success();
      }))
    return failure();
  grid = builder.getArrayAttr(factors);
  return success();
}

static void printGrid(AsmPrinter &printer, ArrayAttr grid) {
  printer << "grid = [";
  llvm::interleaveComma(grid, printer, [&](Attribute factor) {
    if (auto symbol = dyn_cast<StringAttr>(factor))
      printer << symbol.getValue();
    else
      printer << cast<IntegerAttr>(factor).getInt();
  });
  printer << "]";
}

static LogicalResult verifyGrid(function_ref<InFlightDiagnostic()> emitError, ArrayAttr grid) {
  if (!grid || grid.empty())
    return emitError() << "grid must have at least one factor";
  for (Attribute factor : grid) {
    if (auto symbol = dyn_cast<StringAttr>(factor)) {
      if (schema::gridSymbol(std::string_view(symbol.getValue().data(), symbol.size())) < 0)
        return emitError() << "grid symbol '" << symbol.getValue()
                           << "' is not a step size (T, B, P or R)";
      continue;
    }
    auto integer = dyn_cast<IntegerAttr>(factor);
    if (!integer || integer.getInt() <= 0)
      return emitError() << "grid factors must be step symbols or positive integers, got "
                         << factor;
  }
  return success();
}

static LogicalResult verifyBlock(function_ref<InFlightDiagnostic()> emitError, int64_t block,
                                 int64_t shared) {
  if (block < 1 || block > schema::kMaxBlockThreads)
    return emitError() << "block must have 1 to " << schema::kMaxBlockThreads
                       << " threads, got " << block;
  if (shared < 0 || shared > schema::kMaxStaticSharedBytes)
    return emitError() << "shared memory must be 0 to " << schema::kMaxStaticSharedBytes
                       << " bytes (static, sm_90), got " << shared;
  return success();
}

//===----------------------------------------------------------------------===//
// KernelVariantAttr
//===----------------------------------------------------------------------===//

LogicalResult KernelVariantAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                        StringAttr kernel, ArrayAttr grid, int64_t block,
                                        int64_t shared) {
  if (!kernel || kernel.empty())
    return emitError() << "a kernel variant needs a kernel name";
  if (failed(verifyGrid(emitError, grid)))
    return failure();
  return verifyBlock(emitError, block, shared);
}

/// `<"name", grid = [B, 8], block = 128, shared = 2064>`
Attribute KernelVariantAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  std::string kernel;
  ArrayAttr grid;
  int64_t block = 0, shared = 0;
  if (parser.parseLess() || parser.parseString(&kernel) || parser.parseComma() ||
      parser.parseKeyword("grid") || parseGrid(parser, grid) || parser.parseComma() ||
      parser.parseKeyword("block") || parser.parseEqual() || parser.parseInteger(block) ||
      parser.parseComma() || parser.parseKeyword("shared") || parser.parseEqual() ||
      parser.parseInteger(shared) || parser.parseGreater())
    return {};
  MLIRContext *ctx = parser.getContext();
  return getChecked([&] { return parser.emitError(loc); }, ctx, StringAttr::get(ctx, kernel),
                    grid, block, shared);
}

void KernelVariantAttr::print(AsmPrinter &printer) const {
  printer << "<\"" << getKernel().getValue() << "\", ";
  printGrid(printer, getGrid());
  printer << ", block = " << getBlock() << ", shared = " << getShared() << ">";
}

//===----------------------------------------------------------------------===//
// LaunchAttr
//===----------------------------------------------------------------------===//

LogicalResult LaunchAttr::verify(function_ref<InFlightDiagnostic()> emitError, ArrayAttr grid,
                                 int64_t block, int64_t shared, KernelVariantAttr decode,
                                 int64_t maxSplits, int64_t partialFloats,
                                 KernelVariantAttr combine, bool programmatic,
                                 int64_t splitKeys) {
  if (failed(verifyGrid(emitError, grid)))
    return failure();
  if (block == 0) {
    // A CPU launch (a range of grid items per call): nothing else applies.
    if (shared || decode || maxSplits || partialFloats || combine || programmatic || splitKeys)
      return emitError() << "a launch without block threads (CPU) has only a grid";
    return success();
  }
  if (failed(verifyBlock(emitError, block, shared)))
    return failure();
  if (!decode) {
    if (maxSplits || partialFloats || combine || splitKeys)
      return emitError()
             << "max_splits, partial_floats, combine and split_keys need a decode variant";
    return success();
  }
  if (maxSplits < 1 || partialFloats < 1)
    return emitError() << "a decode variant needs max_splits >= 1 and partial_floats >= 1";
  if (maxSplits > 1 && !combine)
    return emitError() << "max_splits = " << maxSplits << " needs a combine variant";
  if (maxSplits == 1 && (combine || splitKeys))
    return emitError() << "a combine variant and split_keys need max_splits > 1";
  if (maxSplits > 1 && splitKeys < 1)
    return emitError() << "max_splits = " << maxSplits << " needs split_keys >= 1";
  return success();
}

Attribute LaunchAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  ArrayAttr grid;
  int64_t block = 0, shared = 0, maxSplits = 0, partialFloats = 0, splitKeys = 0;
  KernelVariantAttr decode, combine;
  bool programmatic = false;
  if (parser.parseLess() || parser.parseKeyword("grid") || parseGrid(parser, grid))
    return {};
  llvm::StringSet<> seen;
  while (succeeded(parser.parseOptionalComma())) {
    SMLoc at = parser.getCurrentLocation();
    StringRef key;
    if (parser.parseKeyword(&key))
      return {};
    if (!seen.insert(key).second)
      return parser.emitError(at, "'") << key << "' appears twice", Attribute();
    auto integer = [&](int64_t &value) -> ParseResult {
      return failure(parser.parseEqual() || parser.parseInteger(value));
    };
    auto variant = [&](KernelVariantAttr &value) -> ParseResult {
      if (parser.parseEqual())
        return failure();
      value = llvm::dyn_cast_or_null<KernelVariantAttr>(KernelVariantAttr::parse(parser, {}));
      return success(static_cast<bool>(value));
    };
    ParseResult result = success();
    if (key == "block")
      result = integer(block);
    else if (key == "shared")
      result = integer(shared);
    else if (key == "decode")
      result = variant(decode);
    else if (key == "max_splits")
      result = integer(maxSplits);
    else if (key == "partial_floats")
      result = integer(partialFloats);
    else if (key == "combine")
      result = variant(combine);
    else if (key == "split_keys")
      result = integer(splitKeys);
    else if (key == "programmatic")
      programmatic = true;
    else
      return parser.emitError(at, "unknown launch field '") << key << "'", Attribute();
    if (failed(result))
      return {};
  }
  if (parser.parseGreater())
    return {};
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(), grid, block,
                    shared, decode, maxSplits, partialFloats, combine, programmatic, splitKeys);
}

void LaunchAttr::print(AsmPrinter &printer) const {
  printer << "<";
  printGrid(printer, getGrid());
  if (isGpu())
    printer << ", block = " << getBlock() << ", shared = " << getShared();
  if (KernelVariantAttr decode = getDecode()) {
    printer << ", decode = ";
    decode.print(printer);
    printer << ", max_splits = " << getMaxSplits() << ", partial_floats = " << getPartialFloats();
  }
  if (KernelVariantAttr combine = getCombine()) {
    printer << ", combine = ";
    combine.print(printer);
  }
  if (getSplitKeys())
    printer << ", split_keys = " << getSplitKeys();
  if (getProgrammatic())
    printer << ", programmatic";
  printer << ">";
}

LaunchAttr LaunchAttr::withProgrammatic(bool flag) const {
  return LaunchAttr::get(getContext(), getGrid(), getBlock(), getShared(), getDecode(),
                         getMaxSplits(), getPartialFloats(), getCombine(), flag, getSplitKeys());
}

mlir::ModuleOp qwen::qkernel::getKernelModule(mlir::ModuleOp top) {
  for (auto nested : top.getOps<mlir::ModuleOp>())
    if (nested.getSymName() == kKernelModuleName)
      return nested;
  return {};
}

std::optional<KernelKind> qwen::qkernel::getKernelKind(Operation *func) {
  if (auto kind = func->getAttrOfType<KernelKindAttr>(kKindAttrName))
    return kind.getValue();
  return std::nullopt;
}
