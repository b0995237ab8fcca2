"""The tiny networks several test files build (fast on a CPU, every block kind present)."""

# a class-conditional 8x8 base U-Net with learned variance (the CLI and cascade tests' model)
TINY_BASE = dict(
    image_size=8,
    in_channels=1,
    model_channels=32,
    channel_mult=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(4,),
    num_head_channels=32,
    num_classes=10,
    learn_sigma=True,
)

# the 8 -> 16 super-resolution U-Net that goes with it (the cascade and upsampler tests' model)
TINY_SR = dict(
    image_size=16,
    small_size=8,
    in_channels=1,
    model_channels=32,
    channel_mult=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(8,),
    num_head_channels=32,
    resblock_updown=True,
    num_classes=10,
    learn_sigma=True,
)
