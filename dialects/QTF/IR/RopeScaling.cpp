//===- RopeScaling.cpp - RoPE inverse frequencies, as HF computes them ----===//
//
// The one place the frequencies of every RoPE type are computed, in the same
// float32 arithmetic (operation by operation) as transformers'
// modeling_rope_utils.py, so every target's kernels read the same table.
//
//===----------------------------------------------------------------------===//
#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/IR/DialectImplementation.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace qwen::qtf;

LogicalResult RopeScalingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                      RopeScalingKind kind, APFloat factorValue,
                                      int64_t originalMaxPositions, APFloat attentionValue,
                                      APFloat betaFastValue, APFloat betaSlowValue, bool truncate,
                                      APFloat lowFreqValue, APFloat highFreqValue,
                                      DenseF64ArrayAttr shortFactor,
                                      DenseF64ArrayAttr longFactor) {
  (void)truncate;
  double factor = factorValue.convertToDouble();
  double attentionFactor = attentionValue.convertToDouble();
  double betaFast = betaFastValue.convertToDouble(), betaSlow = betaSlowValue.convertToDouble();
  double lowFreqFactor = lowFreqValue.convertToDouble();
  double highFreqFactor = highFreqValue.convertToDouble();
  if (!std::isfinite(factor) || factor < 1.0)
    return emitError() << "rope_scaling factor must be finite and at least 1, got " << factor;
  if (!std::isfinite(attentionFactor) || attentionFactor <= 0.0)
    return emitError() << "rope_scaling attention_factor must be finite and positive";
  bool needsOriginal = kind != RopeScalingKind::Linear;
  if (needsOriginal && originalMaxPositions <= 0)
    return emitError() << "rope_scaling " << stringifyRopeScalingKind(kind)
                       << " needs a positive original_max_positions";
  if (kind == RopeScalingKind::Yarn &&
      (!std::isfinite(betaFast) || !std::isfinite(betaSlow) || betaFast <= 0.0 || betaSlow <= 0.0))
    return emitError() << "rope_scaling yarn beta_fast and beta_slow must be finite and positive";
  if (kind == RopeScalingKind::Llama3 &&
      (!std::isfinite(lowFreqFactor) || !std::isfinite(highFreqFactor) || lowFreqFactor <= 0.0 ||
       highFreqFactor <= lowFreqFactor))
    return emitError() << "rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor";
  bool longrope = kind == RopeScalingKind::LongRope;
  if (longrope != static_cast<bool>(shortFactor) || longrope != static_cast<bool>(longFactor))
    return emitError() << "short_factor and long_factor are given exactly for longrope";
  if (longrope) {
    if (shortFactor.size() != longFactor.size())
      return emitError() << "longrope short_factor and long_factor differ in length";
    for (DenseF64ArrayAttr factors : {shortFactor, longFactor})
      for (double f : factors.asArrayRef())
        if (!std::isfinite(f) || f <= 0.0)
          return emitError() << "longrope factors must be finite and positive";
  }
  return success();
}

/// HF's `arange(0, d, 2).float() / d`, in float32.
static float exponentOf(int64_t i, int64_t rotaryDim) {
  return static_cast<float>(2 * i) / static_cast<float>(rotaryDim);
}

SmallVector<float> qwen::qtf::ropeInverseFrequencies(RopeScalingAttr scaling, double theta,
                                                     int64_t rotaryDim, bool longContext) {
  const int64_t half = rotaryDim / 2;
  const float base = static_cast<float>(theta);
  SmallVector<float> powers, table;
  for (int64_t i = 0; i < half; ++i)
    powers.push_back(std::pow(base, exponentOf(i, rotaryDim)));
  for (float power : powers)
    table.push_back(1.0f / power);
  if (!scaling)
    return table;
  const float factor = static_cast<float>(scaling.factor());
  switch (scaling.getKind()) {
  case RopeScalingKind::Dynamic:
    // Up to the original context the base is theta itself; beyond it the
    // kernel derives the base from the step's length.
    return table;
  case RopeScalingKind::Linear:
    for (float &f : table)
      f /= factor;
    return table;
  case RopeScalingKind::LongRope: {
    ArrayRef<double> ext =
        (longContext ? scaling.getLongFactor() : scaling.getShortFactor()).asArrayRef();
    for (int64_t i = 0; i < half; ++i)
      table[i] = 1.0f / (static_cast<float>(ext[i]) * powers[i]);
    return table;
  }
  case RopeScalingKind::Yarn: {
    // Correction range in double (Python floats), the blend in float32.
    double original = static_cast<double>(scaling.getOriginalMaxPositions());
    auto correctionDim = [&](double rotations) {
      return (static_cast<double>(rotaryDim) * std::log(original / (rotations * 2 * M_PI))) /
             (2 * std::log(theta));
    };
    double low = correctionDim(scaling.getBetaFast().convertToDouble());
    double high = correctionDim(scaling.getBetaSlow().convertToDouble());
    if (scaling.getTruncate()) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(rotaryDim - 1));
    if (low == high)
      high += 0.001; // HF: prevents a division by zero
    const float lowF = static_cast<float>(low), span = static_cast<float>(high - low);
    for (int64_t i = 0; i < half; ++i) {
      float extrapolation = 1.0f / powers[i];
      float interpolation = 1.0f / (factor * powers[i]);
      float ramp = std::clamp((static_cast<float>(i) - lowF) / span, 0.0f, 1.0f);
      float extrapolationFactor = 1.0f - ramp;
      table[i] = interpolation * (1.0f - extrapolationFactor) +
                 extrapolation * extrapolationFactor;
    }
    return table;
  }
  case RopeScalingKind::Llama3: {
    double old = static_cast<double>(scaling.getOriginalMaxPositions());
    const float lowFactor = static_cast<float>(scaling.getLowFreqFactor().convertToDouble());
    const float span =
        static_cast<float>(scaling.getHighFreqFactor().convertToDouble() - scaling.getLowFreqFactor().convertToDouble());
    const float lowWavelen = static_cast<float>(old / scaling.getLowFreqFactor().convertToDouble());
    const float highWavelen = static_cast<float>(old / scaling.getHighFreqFactor().convertToDouble());
    const float twoPi = static_cast<float>(2 * M_PI);
    for (float &f : table) {
      float wavelen = twoPi / f;
      float scaled = wavelen > lowWavelen ? f / factor : f;
      float smooth = (static_cast<float>(old) / wavelen - lowFactor) / span;
      float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
      bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
      f = medium ? smoothed : scaled;
    }
    return table;
  }
  }
  llvm_unreachable("unknown rope scaling kind");
}
