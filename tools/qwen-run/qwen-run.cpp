//===- qwen-run.cpp - Run a compiled Qwen artifact ------------------------===//
//
// qwen-run generate | chat | bench | tokenize | logits | embed | info | serve
//
// Everything model-specific comes from the artifact (manifest.json +
// kernels.so) and the checkpoint folder it references; this tool only parses
// options, drives the runtime's Engine / Generator and prints.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/chat.h"
#include "qwen_rt/cpu_features.h"
#include "qwen_rt/cuda_driver.h"
#include "qwen_rt/engine.h"
#include "qwen_rt/error.h"
#include "qwen_rt/generate.h"
#include "qwen_rt/image.h"
#include "qwen_rt/image_prompt.h"
#include "qwen_rt/limits.h"
#include "qwen_rt/safetensors.h"
#include "qwen_rt/sampling.h"
#include "qwen_rt/embed.h"
#include "qwen_rt/tokenizer.h"
#include "qwen_server/server.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
using namespace qwen::rt;
using Clock = std::chrono::steady_clock;

namespace {

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// Options every subcommand that loads an engine shares.
struct EngineFlags {
  std::string artifact;
  EngineOptions options;
  void add(CLI::App *app, bool withRandomWeights) {
    app->add_option("artifact", artifact, "Artifact folder written by qwen-compile")->required();
    app->add_option("--checkpoint", options.checkpointDir,
                    "Checkpoint folder to bind (default: the one recorded in the manifest)");
    app->add_option("--threads", options.numThreads, "Worker threads, 0 = all hardware threads");
    app->add_option("--max-context", options.maxContext,
                    "Longest sequence in tokens (default: the model's context, max_position_embeddings or the longer one of its rope scaling)");
    maxBatchTokensOpt = app->add_option("--max-batch-tokens", options.maxBatchTokens,
                                        "Most tokens per kernel step; longer prompts are split (default 2048)");
    app->add_option("--kv-pages", options.numPages, "KV cache pages (default: enough for every sequence's full context)");
    app->add_option("--cuda-device", options.cudaDevice, "CUDA artifacts: the GPU to run on (default 0)");
    app->add_flag("--no-cuda-graphs", noGraphs, "CUDA artifacts: launch every decode step's kernels one by one");
    app->add_flag("--no-cuda-pdl", noProgrammaticLaunch,
                  "CUDA artifacts: launch each kernel after the previous one completes (by default the next "
                  "kernel is scheduled while the previous drains: programmatic dependent launch)");
    app->add_option("--cuda-decode-kernels", decodeKernels,
                    "CUDA artifacts: decode-only steps launch the kernels' decode variants (attention with a "
                    "block per kv head, split over the context): auto or never")
        ->check(CLI::IsMember({"auto", "never"}))
        ->capture_default_str();
    app->add_flag("--cuda-host-sampling", hostSampling,
                  "CUDA artifacts: copy every step's logits back and sample on the host (the device picks greedy "
                  "ids and top-k candidates by default)");
    app->add_option("--cuda-decode-splits", options.cudaDecode.splits,
                    "CUDA artifacts: context splits of the decode attention blocks (flash-decoding); 0 picks "
                    "them per batch so that the GPU is full")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 20))
        ->capture_default_str();
    app->add_flag("--no-prefix-cache", noPrefixCache,
                  "Recompute every prompt from its first token (by default a prompt reuses the KV pages, and for "
                  "hybrid models the state checkpoints, of the prefix it shares with earlier ones)");
    app->add_option("--prefix-checkpoints", options.prefixCheckpoints,
                    "Hybrid models: linear-attention state checkpoints the prefix cache keeps (each the size of a "
                    "state slot; default 2 per sequence)")
        ->check(CLI::Range(0, 1 << 20));
    app->add_option("--image-cache-mib", imageCacheMiB,
                    "Vision models: MiB of host memory for images seen before (their pixels and vision rows, found "
                    "by their bytes: a chat's history is not decoded and encoded again each turn); 0 keeps none")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 30))
        ->capture_default_str();
    if (withRandomWeights) {
      app->add_flag("--random-weights", options.randomWeights,
                    "Seeded random weights instead of the checkpoint (for benchmarks of real-size configs)");
      app->add_option("--seed", options.seed, "Seed of --random-weights and of the random prompt");
    }
  }
  bool noGraphs = false, hostSampling = false, noProgrammaticLaunch = false, noPrefixCache = false;
  int64_t imageCacheMiB = 256;
  CLI::Option *maxBatchTokensOpt = nullptr;
  std::string decodeKernels = "auto";
  std::unique_ptr<Engine> load() {
    options.progress = isatty(STDERR_FILENO);
    options.cudaGraphs = !noGraphs;
    options.imageCacheBytes = uint64_t(imageCacheMiB) << 20;
    options.cudaProgrammaticLaunch = !noProgrammaticLaunch;
    options.cudaDecode.variants = decodeKernels != "never";
    options.cudaDeviceSampling = !hostSampling;
    options.prefixCache = !noPrefixCache;
    if (options.maxContext == 0)
      fitContextToMemory();
    return Engine::load(artifact, options);
  }
  /// Without --max-context: the model's full context, shortened when the KV
  /// cache for it would not fit in 90% of this machine's (or GPU's) memory.
  void fitContextToMemory() {
    Artifact art = Artifact::open(artifact);
    MemoryPlan plan = planMemory(art, options);
    uint64_t budget = physicalMemoryBytes() / 10 * 9;
    if (art.isCuda()) {
      const CudaDriver &driver = CudaDriver::get(); // no driver: Engine::load says so
      if (options.cudaDevice < 0 || size_t(options.cudaDevice) >= driver.devices().size())
        return;
      budget = driver.devices()[size_t(options.cudaDevice)].memoryBytes / 10 * 9;
    }
    if (budget == 0 || plan.totalBytes() <= budget || options.numPages > 0)
      return;
    uint64_t fixed = plan.weightBytes + plan.arenaBytes + plan.stateBytesTotal + plan.checkpointBytesTotal;
    uint64_t perSequence = plan.kvBytesPerPage * uint64_t(plan.maxSequences);
    int64_t pages = fixed < budget ? int64_t((budget - fixed) / perSequence) : 0;
    if (pages <= 0)
      return; // Engine::load explains what does not fit
    options.maxContext = std::min(plan.maxContext, pages * plan.pageSize);
    std::fprintf(stderr, "qwen-run: note: the context is limited to %lld tokens to fit in memory (--max-context)\n",
                 static_cast<long long>(options.maxContext));
  }
};

/// Sampling flags; unset ones come from the checkpoint's generation_config.json.
struct SamplingFlags {
  float temperature = 0, topP = 1;
  int topK = 0, maxNewTokens = 128;
  uint64_t seed = 0;
  CLI::Option *temperatureOpt, *topPOpt, *topKOpt, *maxNewTokensOpt;
  void add(CLI::App *app) {
    maxNewTokensOpt = app->add_option("--max-new-tokens", maxNewTokens,
                                      "Most tokens to generate (default: generation_config.json, else 128)");
    temperatureOpt = app->add_option("--temperature", temperature,
                                     "0 = greedy (default: generation_config.json when it samples, else 0)");
    topKOpt = app->add_option("--top-k", topK, "Keep the K most likely tokens, 0 = all");
    topPOpt = app->add_option("--top-p", topP, "Nucleus sampling threshold in (0, 1]");
    app->add_option("--seed", seed, "Sampling seed");
  }
  GenerationRequest request(const Engine &engine) const {
    const GenerationConfig &gc = engine.generationConfig();
    GenerationRequest r;
    bool sample = gc.doSample.value_or(gc.temperature.has_value());
    r.sampling.temperature = temperatureOpt->count() ? temperature : (sample ? gc.temperature.value_or(1.0f) : 0.0f);
    r.sampling.topK = topKOpt->count() ? topK : (sample ? gc.topK.value_or(0) : 0);
    r.sampling.topP = topPOpt->count() ? topP : (sample ? gc.topP.value_or(1.0f) : 1.0f);
    r.sampling.seed = seed;
    r.maxNewTokens = maxNewTokensOpt->count() ? maxNewTokens : gc.maxNewTokens.value_or(128);
    return r;
  }
};

const Tokenizer &requireTokenizer(const Engine &engine) {
  if (const Tokenizer *tok = engine.tokenizer())
    return *tok;
  throw Error("no tokenizer: the artifact's checkpoint folder " +
              (engine.checkpointDir().empty() ? std::string("(none)") : engine.checkpointDir()) +
              " has no " + (engine.artifact().checkpoint().tokenizer.empty() ? std::string("tokenizer.json")
                                                                             : engine.artifact().checkpoint().tokenizer) +
              "; pass --checkpoint DIR with the checkpoint's folder");
}

void printStats(const GenerationResult &r) {
  double decodeSeconds = r.totalSeconds - r.firstTokenSeconds;
  int64_t generated = int64_t(r.tokens.size()) + (r.stopToken ? 1 : 0);
  std::fprintf(stderr,
               "\n[prompt %lld tokens (%lld from the prefix cache): %.3f s to first token (%.1f tok/s); %lld "
               "generated (%s)",
               static_cast<long long>(r.promptTokens), static_cast<long long>(r.cachedTokens), r.firstTokenSeconds,
               double(r.promptTokens - r.cachedTokens) / std::max(r.firstTokenSeconds, 1e-9),
               static_cast<long long>(generated), finishReasonName(r.finish));
  if (generated > 1)
    std::fprintf(stderr, "; decode %.1f tok/s", double(generated - 1) / std::max(decodeSeconds, 1e-9));
  std::fprintf(stderr, "]\n");
}

/// Runs one request, streaming its text to stdout (or printing it at the end).
GenerationResult generateText(Engine &engine, GenerationRequest request, bool stream) {
  const Tokenizer &tok = requireTokenizer(engine);
  StreamingDecoder decoder(tok);
  Generator gen(engine, [&](const TokenEvent &ev) {
    if (ev.isStop || !stream)
      return;
    std::string text = decoder.push(ev.token);
    if (!text.empty()) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
  });
  int id = gen.submit(std::move(request));
  gen.runToCompletion();
  GenerationResult r = gen.result(id);
  std::string rest = stream ? decoder.finish() : tok.decode(r.tokens);
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fflush(stdout);
  return r;
}

//===----------------------------------------------------------------------===//
// Subcommands
//===----------------------------------------------------------------------===//

/// The prompt of `generate --prompt-file`: the file's bytes, or stdin's for
/// "-", taken as they are (a trailing newline is part of the prompt).
std::string readPromptFile(const std::string &path) {
  std::FILE *in = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  const std::string name = path == "-" ? std::string("standard input") : "prompt file " + path;
  if (!in)
    throw Error("cannot open " + name + ": " + std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), in)) > 0) {
    if (text.size() + n > qwen::limits::kMaxPromptBytes) {
      if (in != stdin)
        std::fclose(in);
      throw Error(name + " is larger than " + std::to_string(qwen::limits::kMaxPromptBytes >> 20) + " MiB");
    }
    text.append(buffer, n);
  }
  bool failed = std::ferror(in);
  if (in != stdin)
    std::fclose(in);
  if (failed)
    throw Error("cannot read " + name);
  return text;
}

/// The checkpoint's chat template (Qwen3 or Qwen3.5); Qwen3's without a
/// checkpoint folder (random weights).
ChatTemplate chatTemplateOf(const Engine &engine) {
  if (engine.checkpointDir().empty())
    return ChatTemplate(ChatTemplateStyle::Qwen3);
  return ChatTemplate::fromCheckpoint(engine.checkpointDir());
}

std::string chatPrompt(const ChatTemplate &chatTemplate, const std::vector<ChatMessage> &messages, bool think) {
  ChatTemplateOptions options;
  options.enableThinking = think;
  return chatTemplate.render(messages, nullptr, options);
}

/// The prefix cache's totals, one line on stderr.
void printPrefixCacheStats(const Engine &engine) {
  if (!engine.prefixCacheEnabled())
    return;
  PrefixCacheStats st = engine.prefixCacheStats();
  std::fprintf(stderr, "[prefix cache: %lld of %lld prompts hit, %lld of %lld prompt tokens reused (%.1f%%)]\n",
               static_cast<long long>(st.hits), static_cast<long long>(st.lookups),
               static_cast<long long>(st.reusedTokens), static_cast<long long>(st.lookupTokens), 100.0 * st.hitRate());
}

/// An image file's bytes, for a chat message's image part.
ChatImage readImageFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error("cannot read the image " + path);
  ChatImage image;
  image.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return image;
}

/// Image files decoded and preprocessed for the engine (PNG, JPEG, WebP).
std::vector<PixelValues> preprocessImageFiles(const Engine &engine, const std::vector<std::string> &paths,
                                              std::vector<ChatImage> *files = nullptr) {
  std::vector<std::vector<uint8_t>> encoded;
  std::vector<std::string> origins;
  for (const std::string &path : paths) {
    ChatImage image = readImageFile(path);
    encoded.push_back(image.bytes);
    origins.push_back("image " + path);
    if (files)
      files->push_back(std::move(image));
  }
  return preprocessImages(engine, encoded, origins);
}

/// A user message: its images first (each rendered as the template's image
/// placeholder), then the text, as HF's processors order them.
ChatMessage userMessage(const std::string &text, std::vector<ChatImage> images) {
  ChatMessage m{"user", text};
  if (images.empty())
    return m;
  m.contentParts.emplace(images.size(), kChatImagePlaceholder);
  m.contentParts->push_back(text);
  m.images = std::move(images);
  return m;
}

int runGenerate(EngineFlags &ef, const SamplingFlags &sf, const std::string &prompt, bool noStream, bool chat,
                int repeat, const std::vector<std::string> &imagePaths) {
  if (repeat < 1)
    throw Error("--repeat must be at least 1, got " + std::to_string(repeat));
  ef.options.maxSequences = 1;
  std::unique_ptr<Engine> engine = ef.load();
  const Tokenizer &tok = requireTokenizer(*engine);
  // --image: with --chat each image is a part of the user message before the
  // text; without, the text holds one <|image_pad|> per image.
  std::vector<ChatImage> files;
  std::vector<PixelValues> images = preprocessImageFiles(*engine, imagePaths, &files);
  std::string text =
      chat ? chatPrompt(chatTemplateOf(*engine), {userMessage(prompt, std::move(files))}, false) : prompt;
  if (!images.empty() && !chat && text.find("<|image_pad|>") == std::string::npos)
    throw Error("--image: the prompt has no <|image_pad|>; write <|vision_start|><|image_pad|><|vision_end|> where "
                "each image goes, or pass --chat");
  // Each repetition after the first finds the prompt in the prefix cache.
  for (int i = 0; i < repeat; ++i) {
    GenerationRequest request = sf.request(*engine);
    request.prompt = tok.encode(text);
    request.pixelImages = images;
    GenerationResult r = generateText(*engine, std::move(request), !noStream);
    std::fputc('\n', stdout);
    printStats(r);
  }
  if (repeat > 1)
    printPrefixCacheStats(*engine);
  return 0;
}

int runChat(EngineFlags &ef, const SamplingFlags &sf, const std::string &system, bool think) {
  ef.options.maxSequences = 1;
  std::unique_ptr<Engine> engine = ef.load();
  requireTokenizer(*engine);
  const ChatTemplate chatTemplate = chatTemplateOf(*engine);
  std::vector<ChatMessage> messages;
  if (!system.empty())
    messages.push_back({"system", system});
  bool interactive = isatty(STDIN_FILENO);
  if (interactive)
    std::fprintf(stderr, "Chatting with %s; end with /exit or Ctrl-D.\n", ef.artifact.c_str());
  // The conversation as the model saw it: every prompt and answer token. A
  // turn's prompt extends the previous one, so it reuses all of it from the
  // prefix cache (re-rendering the template would drop the think blocks and
  // re-tokenize the answers).
  std::vector<int32_t> context;
  std::string line;
  // /image PATH: images for the next user message, and the vision program's
  // rows of every image of the conversation, encoded once (its prompt is
  // prefilled again past the first image: pages holding image tokens are
  // not reused from the prefix cache, but the images are not re-encoded).
  std::vector<std::string> pendingPaths;
  std::vector<PixelValues> pendingImages;
  std::vector<ImageEmbedding> conversationImages;
  while (true) {
    if (interactive) {
      std::fprintf(stderr, "> ");
      std::fflush(stderr);
    }
    if (!std::getline(std::cin, line) || line == "/exit")
      break;
    if (line.empty())
      continue;
    if (line.rfind("/image", 0) == 0 && (line.size() == 6 || line[6] == ' ')) {
      std::string path = line.size() > 7 ? line.substr(7) : "";
      try {
        if (path.empty())
          throw Error("/image needs a file: /image PATH");
        std::vector<PixelValues> one = preprocessImageFiles(*engine, {path});
        std::fprintf(stderr, "[image %s: %lld image tokens, for the next message]\n", path.c_str(),
                     static_cast<long long>(one[0].mergedTokens(engine->spatialMergeSize())));
        pendingPaths.push_back(path);
        pendingImages.push_back(std::move(one[0]));
      } catch (const Error &e) {
        std::fprintf(stderr, "qwen-run: error: %s\n", e.what());
      }
      continue;
    }
    // Checked before the chat template wraps it, so the offset is the line's own.
    if (size_t bad = firstInvalidUtf8Byte(line); bad != std::string::npos) {
      std::fprintf(stderr, "qwen-run: error: the line is not valid UTF-8 (byte offset %zu of the line)\n", bad);
      continue;
    }
    // The template renders the parts; the pixels are preprocessed already.
    messages.push_back(userMessage(line, std::vector<ChatImage>(pendingPaths.size())));
    try {
      const Tokenizer &tok = *engine->tokenizer();
      GenerationRequest request = sf.request(*engine);
      request.prompt = context;
      std::vector<int32_t> turn = context.empty()
                                      ? tok.encode(chatPrompt(chatTemplate, messages, think))
                                      : tok.encode("\n" + chatPrompt(chatTemplate, {messages.back()}, think));
      if (!pendingImages.empty()) {
        // The earlier turns' image pads are expanded already: expand this turn's.
        std::vector<ImageGrid> grids;
        for (const PixelValues &image : pendingImages)
          grids.push_back(image.gridThw);
        turn = expandImagePads(turn, engine->imageTokenId(), grids, engine->spatialMergeSize());
      }
      request.prompt.insert(request.prompt.end(), turn.begin(), turn.end());
      std::vector<ImageEmbedding> images = conversationImages;
      if (!pendingImages.empty()) {
        Clock::time_point t0 = Clock::now();
        std::vector<ImageEmbedding> encoded = visionEncoder(*engine)(pendingImages);
        std::fprintf(stderr, "[vision: %zu image%s encoded in %.3f s]\n", encoded.size(),
                     encoded.size() == 1 ? "" : "s", secondsSince(t0));
        images.insert(images.end(), std::make_move_iterator(encoded.begin()), std::make_move_iterator(encoded.end()));
      }
      if (!images.empty()) {
        request.images = std::make_shared<const ImagePrompt>(
            prepareImagePrompt(static_cast<const Engine &>(*engine), request.prompt, images));
        request.prompt = request.images->ids;
      }
      std::vector<int32_t> prompt = request.prompt;
      GenerationResult r = generateText(*engine, std::move(request), true);
      std::fputc('\n', stdout);
      std::fflush(stdout);
      printStats(r);
      messages.push_back({"assistant", tok.decode(r.tokens, /*skipSpecial=*/true)});
      context = std::move(prompt);
      context.insert(context.end(), r.tokens.begin(), r.tokens.end());
      // The answer ends with <|im_end|> (the stop token, or added when it was cut).
      std::vector<int32_t> end = r.stopToken ? std::vector<int32_t>{*r.stopToken} : tok.encode("<|im_end|>");
      context.insert(context.end(), end.begin(), end.end());
      conversationImages = std::move(images);
      pendingPaths.clear();
      pendingImages.clear();
    } catch (const Error &e) {
      // The turn is dropped; the conversation so far is kept.
      messages.pop_back();
      std::fprintf(stderr, "qwen-run: error: %s\n", e.what());
    }
  }
  printPrefixCacheStats(*engine);
  return 0;
}

/// One bench measurement: `batch` random prompts of `promptLen` tokens
/// prefilled together, then `genTokens` greedy decode steps.
struct BenchResult {
  double prefillSeconds = 0, decodeSeconds = 0;
};

BenchResult benchOnce(Engine &engine, std::mt19937_64 &rng, int64_t promptLen, int64_t genTokens, int batch) {
  const int64_t vocab = engine.vocabSize();
  std::uniform_int_distribution<int32_t> pick(0, int32_t(vocab - 1));
  std::vector<Engine::SequenceChunk> chunks;
  for (int b = 0; b < batch; ++b) {
    Engine::SequenceChunk c{engine.createSequence(), {}};
    for (int64_t i = 0; i < promptLen; ++i)
      c.tokens.push_back(pick(rng));
    chunks.push_back(std::move(c));
  }
  BenchResult r;
  Clock::time_point t0 = Clock::now();
  std::vector<int32_t> next = engine.forwardGreedy(chunks);
  r.prefillSeconds = secondsSince(t0);
  t0 = Clock::now();
  for (int64_t step = 0; step < genTokens; ++step) {
    for (int b = 0; b < batch; ++b)
      chunks[size_t(b)].tokens = {next[size_t(b)]};
    next = engine.forwardGreedy(chunks);
  }
  r.decodeSeconds = secondsSince(t0);
  for (const Engine::SequenceChunk &c : chunks)
    engine.releaseSequence(c.seq);
  return r;
}

/// Multi-turn chat load through the Generator: `batch` conversations, each
/// opening with the same `systemLen` random tokens and `promptLen` of its
/// own; every turn generates `genTokens` greedy tokens, and the next turn's
/// prompt is the previous prompt, its answer and `promptLen` new tokens.
/// Prints each turn's mean time to first token, then the prefix cache's hits.
int runBenchChat(EngineFlags &ef, int64_t systemLen, int64_t promptLen, int64_t genTokens, int batch, int turns) {
  if (systemLen < 0 || promptLen <= 0 || genTokens <= 0 || batch <= 0 || turns <= 0)
    throw Error("bench --turns needs --system-len >= 0, --prompt-len > 0, --gen > 0 and --batch > 0");
  ef.options.maxSequences = batch;
  if (ef.options.maxContext == 0)
    ef.options.maxContext = systemLen + turns * (promptLen + genTokens);
  Clock::time_point t0 = Clock::now();
  std::unique_ptr<Engine> engine = ef.load();
  std::printf("load:    %.3f s (%d threads, prefix cache %s)\n", secondsSince(t0), engine->numThreads(),
              engine->prefixCacheEnabled() ? "on" : "off");
  std::mt19937_64 rng(ef.options.seed);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(engine->vocabSize() - 1));
  auto randomTokens = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t &id : ids)
      id = pick(rng);
    return ids;
  };
  std::vector<int32_t> system = randomTokens(systemLen);
  std::vector<std::vector<int32_t>> conversations(size_t(batch), system);
  nlohmann::ordered_json turnsJson = nlohmann::ordered_json::array();
  for (int turn = 0; turn < turns; ++turn) {
    Generator gen(*engine);
    std::vector<int> ids;
    for (std::vector<int32_t> &c : conversations) {
      std::vector<int32_t> message = randomTokens(promptLen);
      c.insert(c.end(), message.begin(), message.end());
      GenerationRequest r;
      r.prompt = c;
      r.maxNewTokens = int(genTokens);
      r.stopTokens = std::vector<int32_t>{};
      ids.push_back(gen.submit(std::move(r)));
    }
    Clock::time_point start = Clock::now();
    gen.runToCompletion();
    double seconds = secondsSince(start), ttft = 0;
    int64_t prompt = 0, cached = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const GenerationResult &r = gen.result(ids[i]);
      ttft += r.firstTokenSeconds / double(batch);
      prompt += r.promptTokens;
      cached += r.cachedTokens;
      conversations[i].insert(conversations[i].end(), r.tokens.begin(), r.tokens.end());
    }
    std::printf("turn %d:  %d prompts of %lld tokens (%lld from the cache): %.3f s to first token (mean), "
                "turn %.3f s\n",
                turn + 1, batch, static_cast<long long>(prompt / batch), static_cast<long long>(cached / batch), ttft,
                seconds);
    turnsJson.push_back({{"turn", turn + 1}, {"prompt_tokens", prompt}, {"cached_tokens", cached},
                         {"ttft_s", ttft}, {"turn_s", seconds}});
  }
  PrefixCacheStats st = engine->prefixCacheStats();
  std::printf("prefix cache: %lld of %lld prompts hit, %lld of %lld prompt tokens reused (hit rate %.1f%%), "
              "%lld pages evicted, %lld checkpoints taken\n",
              static_cast<long long>(st.hits), static_cast<long long>(st.lookups),
              static_cast<long long>(st.reusedTokens), static_cast<long long>(st.lookupTokens), 100.0 * st.hitRate(),
              static_cast<long long>(st.evictedPages), static_cast<long long>(st.checkpointsTaken));
  nlohmann::ordered_json j;
  j["artifact"] = ef.artifact;
  j["threads"] = engine->numThreads();
  j["random_weights"] = ef.options.randomWeights;
  j["prefix_cache"] = engine->prefixCacheEnabled();
  j["batch"] = batch;
  j["system_len"] = systemLen;
  j["prompt_len"] = promptLen;
  j["gen"] = genTokens;
  j["turns"] = turnsJson;
  j["prefix_hits"] = st.hits;
  j["prefix_lookups"] = st.lookups;
  j["reused_tokens"] = st.reusedTokens;
  j["prompt_tokens"] = st.lookupTokens;
  j["hit_rate"] = st.hitRate();
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int runBench(EngineFlags &ef, const std::vector<int64_t> &promptLens, int64_t genTokens, const std::vector<int> &batches,
             int64_t warmupSteps) {
  if (promptLens.empty() || batches.empty() || genTokens < 0)
    throw Error("bench needs --prompt-len > 0, --gen >= 0 and --batch > 0");
  for (int64_t p : promptLens)
    if (p <= 0 || p > qwen::limits::kMaxPositions)
      throw Error("bench needs --prompt-len in [1, " + std::to_string(qwen::limits::kMaxPositions) + "], got " +
                  std::to_string(p));
  // Bounded, so prompt + generated tokens and tokens x batch cannot overflow.
  if (genTokens > qwen::limits::kMaxPositions)
    throw Error("bench needs --gen <= " + std::to_string(qwen::limits::kMaxPositions) + ", got " +
                std::to_string(genTokens));
  for (int b : batches)
    if (b <= 0)
      throw Error("bench needs --batch > 0, got " + std::to_string(b));
  ef.options.maxSequences = *std::max_element(batches.begin(), batches.end());
  if (ef.options.maxContext == 0)
    ef.options.maxContext = *std::max_element(promptLens.begin(), promptLens.end()) + genTokens;
  Clock::time_point t0 = Clock::now();
  std::unique_ptr<Engine> engine = ef.load();
  double loadSeconds = secondsSince(t0);
  MemoryPlan plan = engine->memoryPlan();
  // GPU: the first step of a shape creates cuBLASLt plans and the second
  // captures its CUDA graph; a short untimed run keeps that out of the figures.
  if (warmupSteps < 0)
    warmupSteps = engine->cuda() ? 3 : 0;
  std::printf("load:    %.3f s (weights %s%s, %d threads)\n", loadSeconds, formatBytes(plan.weightBytes).c_str(),
              ef.options.randomWeights ? ", random" : (", " + formatBytes(plan.weightBytesMapped) + " mapped").c_str(),
              engine->numThreads());
  std::mt19937_64 rng(ef.options.seed);
  for (int64_t promptLen : promptLens) {
    for (int batch : batches) {
      if (warmupSteps > 0)
        benchOnce(*engine, rng, promptLen, std::min(warmupSteps, genTokens), batch);
      BenchResult r = benchOnce(*engine, rng, promptLen, genTokens, batch);
      double prefillRate = double(promptLen * batch) / std::max(r.prefillSeconds, 1e-9);
      double decodeRate = double(genTokens * batch) / std::max(r.decodeSeconds, 1e-9);
      double msPerStep = genTokens ? 1000.0 * r.decodeSeconds / double(genTokens) : 0.0;
      std::printf("prefill: %lld tokens x %d sequences in %.3f s = %.1f tok/s\n", static_cast<long long>(promptLen),
                  batch, r.prefillSeconds, prefillRate);
      std::printf("decode:  %lld steps x %d sequences in %.3f s = %.1f tok/s (%.2f ms/step)\n",
                  static_cast<long long>(genTokens), batch, r.decodeSeconds, decodeRate, msPerStep);
      nlohmann::ordered_json j;
      j["artifact"] = ef.artifact;
      j["model"] = engine->modelInfo();
      j["threads"] = engine->numThreads();
      j["random_weights"] = ef.options.randomWeights;
      j["batch"] = batch;
      j["prompt_len"] = promptLen;
      j["gen"] = genTokens;
      j["warmup_steps"] = warmupSteps;
      j["load_s"] = loadSeconds;
      j["prefill_s"] = r.prefillSeconds;
      j["prefill_tok_s"] = prefillRate;
      j["decode_s"] = r.decodeSeconds;
      j["decode_tok_s"] = decodeRate;
      j["decode_ms_per_step"] = msPerStep;
      j["kv_dtype"] = dtypeName(engine->artifact().kvCache().dtype);
      j["weight_bytes"] = plan.weightBytes;
      if (const CudaExecutor *gpu = engine->cuda()) {
        const CudaExecutor::Stats &st = gpu->stats();
        j["device"] = plan.device;
        j["cuda_decode_kernels"] = ef.decodeKernels;
        j["cuda_decode_splits"] = ef.options.cudaDecode.splits;
        j["cuda_graphs"] = !ef.noGraphs;
        j["cuda_programmatic_launch"] = gpu->programmaticLaunch();
        j["gpu"] = {{"steps", st.steps},   {"kernel_launches", st.kernelLaunches}, {"gemms", st.gemms},
                    {"graphs_captured", st.graphsCaptured}, {"graph_launches", st.graphLaunches},
                    {"split_decodes", st.splitDecodes}};
      }
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

int runTokenize(const std::string &source, const std::string &checkpoint, const std::string &text, bool noSpecial) {
  std::string path = source;
  if (fs::is_directory(source)) {
    if (fs::exists(fs::path(source) / "manifest.json")) {
      Artifact art = Artifact::open(source);
      std::string dir = art.resolveCheckpointDir(checkpoint);
      std::string name = art.checkpoint().tokenizer.empty() ? "tokenizer.json" : art.checkpoint().tokenizer;
      path = (fs::path(dir) / name).string();
      if (!fs::exists(path))
        throw Error("the artifact's tokenizer " + path + " does not exist; pass --checkpoint DIR with the checkpoint's folder");
    } else {
      path = (fs::path(source) / "tokenizer.json").string();
    }
  }
  Tokenizer tok = Tokenizer::fromFile(path);
  std::vector<int32_t> ids = tok.encode(text, !noSpecial);
  std::printf("%s\n", nlohmann::json(ids).dump().c_str());
  return 0;
}

int runEmbed(EngineFlags &ef, const std::vector<std::string> &texts) {
  ef.options.maxSequences = int(std::min<size_t>(texts.size(), 8));
  std::unique_ptr<Engine> engine = ef.load();
  std::vector<std::vector<float>> embeddings = embed(*engine, texts);
  std::printf("%s\n", nlohmann::json(embeddings).dump().c_str());
  return 0;
}

std::vector<int32_t> parseIds(const std::string &text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    std::string s = a == std::string::npos ? "" : item.substr(a, b - a + 1);
    char *end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v < INT32_MIN || v > INT32_MAX)
      throw Error("--ids: '" + item + "' is not a token id (expected comma-separated integers like 1,2,3)");
    ids.push_back(int32_t(v));
  }
  if (ids.empty())
    throw Error("--ids: no token ids given");
  return ids;
}

/// The images of `qwen-run logits`: image files (through the vision program)
/// or their embeddings saved in a file (a debug path without the tower).
struct LogitsImages {
  std::string promptText;
  std::vector<std::string> paths;
  std::string embedsFile;
  bool any() const { return !paths.empty() || !embedsFile.empty(); }
};

/// The tokenizer of an artifact's checkpoint, before the engine is loaded.
Tokenizer artifactTokenizer(const EngineFlags &ef) {
  Artifact art = Artifact::open(ef.artifact);
  std::string dir = art.resolveCheckpointDir(ef.options.checkpointDir);
  std::string name = art.checkpoint().tokenizer.empty() ? "tokenizer.json" : art.checkpoint().tokenizer;
  std::string path = (fs::path(dir) / name).string();
  if (!fs::exists(path))
    throw Error("--prompt: the artifact's tokenizer " + path + " does not exist; pass --ids or --checkpoint DIR");
  return Tokenizer::fromFile(path);
}

int runLogits(EngineFlags &ef, const std::vector<std::string> &idsTexts, int64_t steps,
              const std::string &outPath, const LogitsImages &images) {
  // Several --ids run together as one ragged batch (prefill in one step, each
  // decode step for all of them in one step); tensors then get an "rN." prefix.
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string &text : idsTexts)
    prompts.push_back(parseIds(text));
  if (!images.promptText.empty()) {
    if (!prompts.empty())
      throw Error("give the prompt either as --ids or as --prompt, not both");
    // Tokenized as is: special-token text such as <|image_pad|> is one token.
    prompts.push_back(artifactTokenizer(ef).encode(images.promptText, true));
  }
  if (prompts.empty())
    throw Error("logits: give the prompt with --ids or --prompt");
  if (steps < 0)
    throw Error("--steps must not be negative");
  if (images.any() && prompts.size() != 1)
    throw Error("--image and --image-embeds take one prompt");
  if (!images.paths.empty() && !images.embedsFile.empty())
    throw Error("give the images either as --image files or as --image-embeds, not both");
  // Images: the prompt has one <|image_pad|> per image; its expanded length
  // sizes the context. The grids come from the embeddings file or from
  // preprocessing each image (its merged-patch count).
  std::vector<ImageEmbedding> embedded;
  std::vector<PixelValues> pixels;
  std::vector<int32_t> userIds; // the prompt with one <|image_pad|> per image
  int32_t imagePad = -1;
  if (images.any()) {
    Artifact art = Artifact::open(ef.artifact);
    if (!art.model().contains("vision"))
      throw Error("this model takes no images (its checkpoint has no vision_config)");
    const nlohmann::json &vision = art.model()["vision"];
    imagePad = vision.value("image_token_id", int32_t(-1));
    const int merge = vision.value("spatial_merge_size", 2);
    std::vector<ImageGrid> grids;
    if (!images.embedsFile.empty()) {
      embedded = readImageEmbeddings(images.embedsFile, merge);
      for (const ImageEmbedding &image : embedded)
        grids.push_back(image.grid);
    } else {
      ImageProcessorConfig config = readImageProcessorConfig(
          (fs::path(art.resolveCheckpointDir(ef.options.checkpointDir)) / "preprocessor_config.json").string());
      for (const std::string &path : images.paths) {
        pixels.push_back(preprocessImage(loadImage(path), config));
        grids.push_back(pixels.back().gridThw);
      }
    }
    userIds = prompts[0];
    prompts[0] = expandImagePads(prompts[0], imagePad, grids, merge);
  }
  const size_t n = prompts.size();
  int64_t total = 0, longest = 0;
  for (const auto &prompt : prompts) {
    total += int64_t(prompt.size());
    longest = std::max<int64_t>(longest, int64_t(prompt.size()));
  }
  ef.options.maxSequences = int(n);
  if (ef.options.maxContext == 0)
    ef.options.maxContext = longest + steps;
  // One step for all prompts, unless --max-batch-tokens asks for smaller ones.
  if (!ef.maxBatchTokensOpt->count())
    ef.options.maxBatchTokens = std::max<int64_t>(ef.options.maxBatchTokens, total);
  std::unique_ptr<Engine> engine = ef.load();
  const int64_t V = engine->vocabSize();

  std::vector<Engine::SequenceChunk> chunks;
  if (images.any()) {
    ImagePrompt prompt = pixels.empty() ? prepareImagePrompt(*engine, userIds, embedded)
                                        : prepareImagePrompt(*engine, userIds, pixels);
    chunks.push_back(prompt.chunk(engine->createSequence(), 0, int64_t(prompt.ids.size())));
  } else {
    for (const auto &prompt : prompts)
      chunks.push_back({engine->createSequence(), prompt});
  }
  std::vector<float> all = engine->forward(chunks, /*allLogits=*/true);
  std::vector<std::vector<float>> promptLogits(n), decodeLogits(n);
  std::vector<std::vector<int32_t>> decodeIds(n);
  size_t row = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t rows = prompts[i].size();
    promptLogits[i].assign(all.begin() + row * V, all.begin() + (row + rows) * V);
    row += rows;
    if (steps > 0)
      decodeIds[i].push_back(argmax(&promptLogits[i][(rows - 1) * V], V));
  }
  for (int64_t step = 0; step < steps; ++step) {
    for (size_t i = 0; i < n; ++i)
      chunks[i] = {chunks[i].seq, {decodeIds[i][size_t(step)]}};
    std::vector<float> rows = engine->forward(chunks);
    for (size_t i = 0; i < n; ++i) {
      const float *logits = &rows[i * V];
      decodeLogits[i].insert(decodeLogits[i].end(), logits, logits + V);
      if (step + 1 < steps)
        decodeIds[i].push_back(argmax(logits, V));
    }
  }
  static const float kNone = 0;
  static const int32_t kNoId = 0;
  std::vector<std::string> names;
  std::vector<TensorToWrite> tensors;
  names.reserve(4 * n);
  for (size_t i = 0; i < n; ++i) {
    std::string prefix = n == 1 ? "" : "r" + std::to_string(i) + ".";
    const int64_t P = int64_t(prompts[i].size());
    for (const char *name : {"prompt_ids", "prompt_logits", "decode_ids", "decode_logits"})
      names.push_back(prefix + name);
    tensors.push_back({names[4 * i], DType::I32, {P}, prompts[i].data()});
    tensors.push_back({names[4 * i + 1], DType::F32, {P, V}, promptLogits[i].data()});
    tensors.push_back({names[4 * i + 2], DType::I32, {steps}, steps ? decodeIds[i].data() : &kNoId});
    tensors.push_back({names[4 * i + 3], DType::F32, {steps, V}, steps ? decodeLogits[i].data() : &kNone});
  }
  writeSafetensors(outPath, tensors);
  std::fprintf(stderr, "wrote %s: %zu prompt(s), %lld decode steps of %lld logits\n", outPath.c_str(), n,
               static_cast<long long>(steps), static_cast<long long>(V));
  return 0;
}

int runInfo(EngineFlags &ef) {
  Artifact art = Artifact::open(ef.artifact);
  std::printf("artifact     %s (format %lld, %s)\n", art.dir().c_str(), static_cast<long long>(kArtifactFormatVersion),
              art.compiler().empty() ? "unknown compiler" : art.compiler().c_str());
  const TargetSpec &t = art.target();
  std::string features;
  for (const std::string &f : t.features)
    features += (features.empty() ? "" : ",") + f;
  if (t.kind == "cuda")
    std::printf("target       cuda %s, %s\n", t.arch.c_str(), t.object.c_str());
  else {
    std::printf("target       %s %s %s [%s], %s\n", t.kind.c_str(), t.triple.c_str(), t.cpu.c_str(), features.c_str(),
                t.object.c_str());
    // Whether kernels.so can run here (QWEN_CPU_FEATURES plays another CPU).
    std::string lacking;
    for (const std::string &f : missingCpuFeatures(t.features))
      lacking += (lacking.empty() ? "" : ",") + f;
    std::printf("host cpu     %s\n", lacking.empty() ? "has every feature above" : ("lacks " + lacking).c_str());
    std::printf("gemm inputs  %s\n", t.gemmActivations == "f32"
                                          ? "f32 activations"
                                          : ("activations rounded to " + t.gemmActivations +
                                             " (the lm_head / router may keep f32)").c_str());
  }
  std::printf("model        %s\n", art.model().dump().c_str());
  const KVCacheSpec &kv = art.kvCache();
  std::printf("kv cache     %lld layers x %lld kv heads x %lld head_dim, pages of %lld tokens, %s\n",
              static_cast<long long>(kv.numLayers), static_cast<long long>(kv.numKvHeads),
              static_cast<long long>(kv.headDim), static_cast<long long>(kv.pageSize), dtypeName(kv.dtype));
  std::printf("program      %zu kernel calls, %zu weights, %zu buffers\n", art.program().size(), art.weights().size(),
              art.buffers().size());
  if (art.isCuda()) {
    size_t gemms = 0;
    for (const ProgramEntry &e : art.program())
      gemms += e.isGemm;
    std::printf("kernels      CUDA %s: %s (%zu generated kernel launches) + %zu cuBLASLt GEMMs; runs on an NVIDIA GPU\n",
                t.arch.c_str(), t.object.c_str(), art.program().size() - gemms, gemms);
  } else {
    try {
      art.loadKernels();
      std::printf("kernels      OK: %s loads on this CPU, every kernel resolved\n", t.object.c_str());
    } catch (const Error &e) {
      std::printf("kernels      NOT USABLE: %s\n", e.what());
    }
  }
  try {
    const CudaDriver &cuda = CudaDriver::get();
    std::string devices;
    for (const CudaDeviceInfo &d : cuda.devices())
      devices += (devices.empty() ? "" : "; ") + d.name + " (" + d.arch() + ", " + formatBytes(d.memoryBytes) +
                 ", " + std::to_string(d.multiprocessors) + " SMs)";
    std::printf("gpu          CUDA driver %d.%d: %s\n",
                cuda.version() / 1000, cuda.version() % 1000 / 10, devices.empty() ? "no devices" : devices.c_str());
  } catch (const Error &e) {
    std::printf("gpu          none: %s\n", e.what());
  }
  std::string dir = art.resolveCheckpointDir(ef.options.checkpointDir);
  if (dir.empty()) {
    std::printf("checkpoint   none recorded (compiled from config.json alone): pass --checkpoint DIR, or "
                "--random-weights to benchmark\n");
  } else {
    try {
      art.verifyCheckpoint(dir);
      std::printf("checkpoint   %s: OK (%zu files unchanged since compilation)\n", dir.c_str(),
                  art.checkpoint().files.size());
    } catch (const Error &e) {
      std::printf("checkpoint   NOT USABLE: %s\n", e.what());
    }
  }
  ef.options.prefixCache = !ef.noPrefixCache;
  MemoryPlan plan = planMemory(art, ef.options);
  std::printf("memory plan for %d sequence%s of up to %lld tokens:\n%s\n", plan.maxSequences,
              plan.maxSequences == 1 ? "" : "s",
              static_cast<long long>(plan.maxContext), plan.describe().c_str());
  uint64_t physical = physicalMemoryBytes();
  if (!art.isCuda() && physical && plan.totalBytes() > physical)
    std::printf("this machine has %s: too little for this plan; choose a smaller one with --max-context, "
                "--max-sequences or --kv-pages\n",
                formatBytes(physical).c_str());
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"qwen-run: runs a Qwen model compiled by qwen-compile (an artifact folder) on the CPU or an NVIDIA GPU"};
  app.require_subcommand(1);

  EngineFlags ef;
  SamplingFlags sf;
  std::string prompt, promptFile, system, tokSource, checkpoint, text, outPath;
  std::vector<std::string> idsList;
  bool noStream = false, chatTemplate = false, think = false, noSpecial = false;
  int repeat = 1;
  int64_t genTokens = 32, steps = 0, warmupSteps = -1, systemLen = 0;
  int turns = 0;
  std::vector<int64_t> promptLens{128};
  std::vector<int> batches{1};

  CLI::App *gen = app.add_subcommand("generate", "Generate text from a prompt, streamed to stdout");
  ef.add(gen, false);
  CLI::Option *promptOpt = gen->add_option("prompt", prompt, "Prompt text");
  gen->add_option("--prompt-file", promptFile, "Read the prompt from a file, or from stdin for -")
      ->excludes(promptOpt);
  sf.add(gen);
  gen->add_flag("--no-stream", noStream, "Print the text at the end instead of as tokens arrive");
  gen->add_flag("--chat", chatTemplate, "Wrap the prompt as one user message in the ChatML template");
  std::vector<std::string> generateImages;
  gen->add_option("--image", generateImages,
                  "An image (PNG, JPEG, WebP) for a vision-language model; repeatable. With --chat the images "
                  "come before the text in the user message; without, the prompt holds one <|image_pad|> per image");
  gen->add_option("--repeat", repeat,
                  "Generate N times, one after the other (later runs reuse the prompt from the prefix cache)")
      ->capture_default_str();

  CLI::App *chat = app.add_subcommand("chat", "Interactive chat (ChatML); reads user lines from stdin, /exit ends");
  EngineFlags chatEf;
  SamplingFlags chatSf;
  chatEf.add(chat, false);
  chatSf.add(chat);
  chat->add_option("--system", system, "System message");
  chat->add_flag("--think", think, "Let the model think (<think> blocks); off by default");
  chat->footer("A line /image PATH attaches an image (PNG, JPEG, WebP) to the next message (vision-language models).");

  CLI::App *bench = app.add_subcommand("bench", "Measure load time, prefill and decode speed");
  EngineFlags benchEf;
  benchEf.add(bench, true);
  bench->add_option("--prompt-len", promptLens, "Prompt tokens per sequence (random ids); a list runs each")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("--gen", genTokens, "Decode steps")->capture_default_str();
  bench->add_option("--batch", batches, "Sequences prefilled and decoded together; a list (1,8,32) runs each")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("--turns", turns,
                    "Multi-turn chat load instead: each of --batch conversations runs N turns through the "
                    "scheduler (prompt: the conversation so far + --prompt-len new tokens; answer: --gen tokens); "
                    "prints the time to first token of each turn and the prefix cache's hits");
  bench->add_option("--system-len", systemLen, "With --turns: tokens of a system prompt all conversations share")
      ->capture_default_str();
  bench->add_option("--warmup-steps", warmupSteps,
                    "Untimed run (prefill + N decode steps) before each measurement; default 3 on a GPU, 0 on the CPU");

  CLI::App *tokenize = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  tokenize->add_option("source", tokSource, "Artifact folder, checkpoint folder, or tokenizer.json")->required();
  tokenize->add_option("text", text, "Text to encode")->required();
  tokenize->add_option("--checkpoint", checkpoint, "Checkpoint folder (when SOURCE is an artifact)");
  tokenize->add_flag("--no-special", noSpecial, "Encode special-token text such as <|im_start|> as plain text");

  CLI::App *logits = app.add_subcommand(
      "logits", "Write the logits of a prompt and of greedy decode steps to a safetensors file");
  logits->footer(
      "The prompt runs as one prefill step with the logits of every position, then N greedy\n"
      "decode steps run one token each. The file holds:\n"
      "  prompt_ids     int32   [P]     the prompt\n"
      "  prompt_logits  float32 [P, V]  logits after each prompt token\n"
      "  decode_ids     int32   [N]     the token fed at decode step i: decode_ids[0] =\n"
      "                                 argmax(prompt_logits[P-1]), decode_ids[i] = argmax(decode_logits[i-1])\n"
      "  decode_logits  float32 [N, V]  logits after feeding decode_ids[i]\n"
      "With several --ids, the prompts run together as one ragged batch and each tensor\n"
      "name gets the prefix rK. (r0.prompt_logits, r1.prompt_logits, ...).\n"
      "With --image (or --image-embeds), the prompt holds one <|image_pad|> per image, and\n"
      "prompt_ids is the expanded prompt.");
  EngineFlags logitsEf;
  logitsEf.add(logits, true);
  LogitsImages logitsImages;
  logits->add_option("--ids", idsList,
                     "Prompt token ids, comma-separated (e.g. 1,2,3); repeat --ids to run several "
                     "prompts as one ragged batch");
  logits->add_option("--prompt", logitsImages.promptText,
                     "Prompt text, tokenized as is (special tokens such as <|image_pad|> included)");
  logits->add_option("--image", logitsImages.paths,
                     "An image file (PNG, JPEG, WebP); repeatable, in the order of the prompt's "
                     "<|image_pad|> tokens, each expanded to the image's merged-patch count");
  logits->add_option("--image-embeds", logitsImages.embedsFile,
                     "Instead of --image: a safetensors file with grid_thw [I, 3] and embeds [rows, hidden], "
                     "the vision tower's output for the prompt's images (a debug path)");
  logits->add_option("--steps", steps, "Greedy decode steps after the prompt")->capture_default_str();
  logits->add_option("-o,--output", outPath, "Output .safetensors file")->required();

  CLI::App *embedCmd = app.add_subcommand(
      "embed", "Print the embeddings of texts as one JSON array of arrays (one per text)");
  embedCmd->footer(
      "Needs an artifact compiled with --hidden-states (e.g. from Qwen3-Embedding). Each text is\n"
      "tokenized as given plus the tokenizer's post-processor (Qwen3-Embedding appends\n"
      "<|endoftext|>); its embedding is the final hidden state of the last token, L2-normalised.\n"
      "Qwen3-Embedding expects queries written with their instruction,\n"
      "  'Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:WHAT'\n"
      "and documents as they are.");
  EngineFlags embedEf;
  std::vector<std::string> embedTexts;
  embedEf.add(embedCmd, false);
  embedCmd->add_option("text", embedTexts, "Texts to embed")->required();

  CLI::App *info = app.add_subcommand("info", "Model facts, checkpoint status and the memory plan");
  EngineFlags infoEf;
  infoEf.add(info, false);
  info->add_option("--max-sequences", infoEf.options.maxSequences, "Sequences alive at once")->capture_default_str();

  CLI::App *serve = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /metrics, ...) until Ctrl-C");
  EngineFlags serveEf;
  serveEf.options.maxSequences = 16;
  qwen::serve::ServerOptions serveOpts;
  serveEf.add(serve, /*withRandomWeights=*/true);
  serve->add_option("--host", serveOpts.host, "Address to listen on")->capture_default_str();
  serve->add_option("--port", serveOpts.port, "Port to listen on; 0 picks a free one (the log says which)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  serve->add_option("--api-key", serveOpts.apiKey,
                    "Require 'Authorization: Bearer KEY' on /v1/*, /tokenize and /detokenize")
      ->envname("QWEN_API_KEY");
  serve->add_option("--served-model-name", serveOpts.servedModelName,
                    "The model name clients send (default: the checkpoint folder's name)");
  serve->add_option("--max-num-seqs", serveEf.options.maxSequences, "Requests running at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve->add_option("--max-queue", serveOpts.maxQueue,
                    "Requests that may wait beyond the running ones; more are refused with 429")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20))
      ->capture_default_str();
  serve->add_option("--max-model-len", serveEf.options.maxContext,
                    "Longest prompt + completion in tokens (same as --max-context)");
  serve->add_option("--max-body-bytes", serveOpts.maxBodyBytes, "Larger request bodies are refused with 413")
      ->check(CLI::Range(size_t(1024), size_t(1) << 32))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    std::fprintf(stderr, "qwen-run: error: %s\nRun with --help for more information.\n", e.what());
    return 1;
  }

  try {
    if (*gen) {
      if (promptFile.empty() && !promptOpt->count())
        throw Error("generate needs a prompt: give it as an argument or with --prompt-file PATH (- for stdin)");
      return runGenerate(ef, sf, promptFile.empty() ? prompt : readPromptFile(promptFile), noStream, chatTemplate,
                         repeat, generateImages);
    }
    if (*chat)
      return runChat(chatEf, chatSf, system, think);
    if (*bench && turns > 0) {
      if (promptLens.size() != 1 || batches.size() != 1)
        throw Error("bench --turns takes one --prompt-len and one --batch");
      return runBenchChat(benchEf, systemLen, promptLens[0], genTokens, batches[0], turns);
    }
    if (*bench)
      return runBench(benchEf, promptLens, genTokens, batches, warmupSteps);
    if (*tokenize)
      return runTokenize(tokSource, checkpoint, text, noSpecial);
    if (*logits)
      return runLogits(logitsEf, idsList, steps, outPath, logitsImages);
    if (*info)
      return runInfo(infoEf);
    if (*embedCmd)
      return runEmbed(embedEf, embedTexts);
    if (*serve) {
      std::unique_ptr<Engine> engine = serveEf.load();
      return qwen::serve::runServer(*engine, serveOpts);
    }
  } catch (const std::exception &e) {
    std::fflush(stdout);
    std::fprintf(stderr, "qwen-run: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
