"""The model configurations clipgo is compared on with the PyTorch reference, as the flags of
both sides: `clipgo bench` and ../shared/peers/clip_step.py (whose flags scripts/peers/infer_peer.py
takes too). scripts/bench_peer.py (throughput side by side) and scripts/profile_steps.py (per-op
profiles) both import this one table, so that a configuration means the same model in both.

MODELS: name -> (the reference preset it starts from, its overrides in clip_step.py's names,
the batch that defines it or 0 for the preset's):
  tiny, small  the reference's presets (configs/models/tiny.yaml, small.yaml);
  recipe       the training recipes' model (configs/train/demo.yaml): tiny's sizes with the CLIP
               vocabulary (49,408) at context 32 and batch 128;
  vitb32       OpenAI's ViT-B/32 at 224 px (configs/models/vit-b-32.yaml), with erf GELU as the
               reference has it (OpenAI's weights use QuickGELU; the cost is the same). Its batch
               is each script's choice (memory, time).
"""

VITB32 = dict(image_size=224, patch_size=32, vision_width=768, vision_layers=12, vision_heads=12,
              text_width=512, text_layers=12, text_heads=8, context_length=77, vocab_size=49408, embed_dim=512)

MODELS = {
    "tiny": ("tiny", {}, 0),
    "small": ("small", {}, 0),
    "recipe": ("tiny", dict(vocab_size=49408, context_length=32), 128),
    "vitb32": ("small", VITB32, 0),
}

# GO_KEY: clip_step.py's size names -> clipgo's model.* keys (without the prefix) for --set.
GO_KEY = {"image_size": "vision.image_size", "patch_size": "vision.patch_size", "vision_width": "vision.width",
          "vision_layers": "vision.layers", "vision_heads": "vision.heads", "text_width": "text.width",
          "text_layers": "text.layers", "text_heads": "text.heads", "context_length": "text.context_length",
          "vocab_size": "text.vocab_size", "embed_dim": "embed_dim"}


def flags(model, batch=0, steps=0, warmup=None):
    """(clipgo bench flags, clip_step.py flags) for one model of MODELS. batch 0 takes the model's
    (else the preset's); steps 0 and warmup None take each side's preset defaults, which agree."""
    preset, over, model_batch = MODELS[model]
    batch = batch or model_batch
    go, ref = ["--preset", preset], ["--preset", preset]
    if batch:
        go += ["--batch", str(batch)]
        ref += ["--batch-size", str(batch)]
    for k, v in over.items():
        go += ["--set", "%s=%d" % (GO_KEY[k], v)]
        ref += ["--" + k.replace("_", "-"), str(v)]
    if steps:
        go += ["--steps", str(steps)]
        ref += ["--steps", str(steps)]
    if warmup is not None:
        go += ["--warmup", str(warmup)]
        ref += ["--warmup", str(warmup)]
    return go, ref
