"""Same 16 critique prompts through rewardlab's LocalBackend (transformers, bf16 weights), 1 thread,
batch 16, greedy, <= 64 tokens, cache off."""
import json, time, torch
from rewardlab.llm import LocalBackend, GenerationConfig
convs = json.load(open("/tmp/convs.json"))
t = time.perf_counter()
b = LocalBackend("qwen2.5-1.5b", threads=1, batch_size=16, dtype="bfloat16")
load = time.perf_counter() - t
t = time.perf_counter()
texts = b.chat(convs, GenerationConfig(max_new_tokens=64, temperature=0.0))
wall = time.perf_counter() - t
toks = b.count_tokens(texts)
print(json.dumps({"load_s": load, "convs": len(convs), "wall_s": wall, "s_per_conv": wall / len(convs), "completion_tokens": sum(toks), "texts": texts[:3]}))
