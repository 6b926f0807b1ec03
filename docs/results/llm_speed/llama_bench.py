"""Quick measurement: Qwen2.5-Coder-1.5B Q4_K_M through llama.cpp (llama-cpp-python 0.3.36), 1 thread,
on the same FeedbackQA critique prompts the transformers critic job writes. Greedy, <= 64 tokens."""
import json, sys, time
sys.path.insert(0, "/work/main/src")
from llama_cpp import Llama
convs = json.load(open("/tmp/convs.json"))
t = time.perf_counter()
llm = Llama("/root/.cache/rewardlab/gguf/qwen2.5-1.5b.gguf", n_threads=1, n_ctx=4096, verbose=False)
load = time.perf_counter() - t
rows = []
for c in convs:
    t = time.perf_counter()
    out = llm.create_chat_completion(c, max_tokens=64, temperature=0.0)
    dt = time.perf_counter() - t
    u = out["usage"]
    rows.append({"s": dt, "prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"], "text": out["choices"][0]["message"]["content"]})
    print(json.dumps(rows[-1])[:300], flush=True)
tot = sum(r["s"] for r in rows)
print(json.dumps({"load_s": load, "convs": len(rows), "s_per_conv": tot / len(rows), "prompt_tokens": sum(r["prompt_tokens"] for r in rows), "completion_tokens": sum(r["completion_tokens"] for r in rows), "wall_s": tot}))
