"""Published pass@1 (%) of comparable models, shown beside ours in the model card and the eval
results table. OpenR1-Qwen-7B: Qwen2.5-Math-7B-Instruct fine-tuned on OpenR1-Math-220k (default
split); both evaluated by OpenR1 with temperature 0.6, top_p 0.95, 32768 new tokens, AIME 64
samples and MATH-500 4."""

PUBLISHED = {
    "OpenR1-Qwen-7B": {"math500": 90.6, "aime2024": 36.7, "aime2025": 40.0},
    "DeepSeek-R1-Distill-Qwen-7B": {"math500": 91.6, "aime2024": 43.3, "aime2025": 40.0},
}
