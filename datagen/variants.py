"""The named variants of the generated dataset family (datagen/toy.py: flat colours,
datagen/photo.py: photographs, datagen/scenes.py: scenes with VOC's failure modes): what each
fixes (classes, appearances, backgrounds, object counts and sizes, seeds), which were held out
of all tuning (``HELD_OUT``), and the demo's data set (``make_toy_voc``)."""
from datagen.toy import BACKGROUNDS, SHAPES, TEXTURES, make_dataset

BASE = dict(
    seed=0, classes=5, shapes=SHAPES, textures=TEXTURES, colours=None,
    backgrounds=["flat", "gradient", "fields", "stripes"], objects=(1, 3), radius=(0.12, 0.22),
    size=(100, 140), bg_only=0.0, n_train=200, n_val=40, layout="voc", rotate=True,
    mirror=True)

# every mode of datagen/scenes.py on, at the calibrated strengths
SCENES = dict(style="scenes", size=(110, 150), n_train=1200, n_val=100,
              parts=dict(share=(0.3, 0.45), pool=3), context=0.6, context_groups=2,
              appearances=2,
              area=(0.02, 0.38), instances=(3, 0.3), occlusion=True,
              classes_per_image=[0.64, 0.27, 0.07, 0.02])

VARIANTS = {
    # the demo's data set: four classes with their own shape, colour and texture on grey clutter
    "demo": dict(seed=0, classes=4, shapes=["disc", "square", "triangle", "diamond"],
                 textures=["rings", "hstripes", "waves", "checker"],
                 colours=["red", "green", "blue", "yellow"], backgrounds=["clutter"],
                 objects=(1, 2), radius=(0.13, 0.23), size=(90, 130), n_train=104, n_val=20,
                 voc_train=24,
                 rotate=False, mirror=False, fixed_appearance=True),
    # tuned on (the recipe was chosen with these)
    "stripes5": dict(seed=11, classes=5, backgrounds=["fields", "stripes"]),
    "single": dict(seed=12, classes=1, bg_only=0.3, layout="custom",
                   backgrounds=["flat", "gradient", "clutter", "colour_clutter"]),
    "shared10": dict(seed=13, classes=10, colours=["red", "blue", "green", "yellow", "white"],
                     backgrounds=["gradient", "clutter", "flat"], n_train=300),
    # held out until it failed (SEC 0.55, its CAM cues four times the objects' area); the
    # foreground cue threshold of the toy recipe was found on it, so it counts as tuned on
    "single_fields": dict(seed=23, classes=1, bg_only=0.25, layout="custom",
                          backgrounds=["fields", "stripes"], shapes=["star", "ring"]),
    # held out: never looked at while choosing the recipe (mixed8 was run once on data of
    # a generator bug since fixed, which kept the CAM stage at 800 iterations)
    "large3": dict(seed=21, classes=3, size=(150, 220), radius=(0.1, 0.2),
                   backgrounds=["flat", "gradient", "clutter", "colour_clutter"]),
    "mixed8": dict(seed=22, classes=8, objects=(1, 4), backgrounds=BACKGROUNDS, n_train=300,
                   colours=["red", "blue", "green", "orange"]),
    # added as held out, like the independent set the benchmark was first measured on (five
    # classes on colourful and striped backgrounds, VOC layout); its first run showed the backbone
    # pretraining too short (two classes at chance), so the longer pretraining was found on it
    # and it counts as tuned on
    "fields5": dict(seed=34, classes=5, backgrounds=["fields", "stripes"]),
    # held out, first run by the benchmark: one class with
    # background-only images on other backgrounds and shapes, ten classes on every style
    "single_clutter": dict(seed=35, classes=1, bg_only=0.3, layout="custom",
                           backgrounds=["colour_clutter", "stripes", "gradient"],
                           shapes=["cross", "crescent", "triangle", "hexagon"]),
    "many10": dict(seed=36, classes=10, backgrounds=BACKGROUNDS, n_train=300),
    # photographic scenes (datagen/photo.py): random shapes filled with photographs'
    # textures on other photographs, shared tints, lighting gradients, JPEG compression
    "photo5": dict(seed=41, style="photo", classes=5, objects=(1, 3), radius=(0.15, 0.3),
                   size=(110, 150), n_train=300),
    "photo1": dict(seed=42, style="photo", classes=1, objects=(1, 2), radius=(0.15, 0.3),
                   size=(110, 150), bg_only=0.3, layout="custom", n_train=200),
    "photo10": dict(seed=43, style="photo", classes=10, objects=(1, 3), radius=(0.15, 0.3),
                    size=(110, 150), n_train=400),
    "photo5b": dict(seed=44, style="photo", classes=5, objects=(1, 3), radius=(0.15, 0.3),
                    size=(110, 150), n_train=300),
    # scenes with VOC's failure modes (datagen/scenes.py): objects of a class-own head and a
    # body shared by every class, class contexts, two appearances per class, sizes of 2-60 %,
    # several instances with occlusion, VOC's classes per image. The generator's parameters
    # (SCENES) were chosen on scenes5 and scenes6 so that the cue statistics match the
    # authors' VOC cues (bench/calibration.py); scenes5b and scenes4 are held out
    "scenes5": dict(SCENES, seed=51, classes=5),
    "scenes6": dict(SCENES, seed=52, classes=6),
    "scenes5b": dict(SCENES, seed=53, classes=5),
    "scenes4": dict(SCENES, seed=54, classes=4),
}
# never used for tuning (photo1 and photo5 are the photographic variants tuned on, scenes5
# and scenes6 the scenes)
HELD_OUT = ("large3", "mixed8", "single_clutter", "many10", "photo10", "photo5b", "scenes5b",
            "scenes4")


def variant(name, **overrides):
    """The full spec of a named variant (BASE, the variant's entries, then ``overrides``)."""
    if name not in VARIANTS:
        raise ValueError("unknown toy variant %r; choose one of %s" % (name, ", ".join(VARIANTS)))
    spec = dict(BASE, name=name, fixed_appearance=False)
    spec.update(VARIANTS[name])
    spec.update(overrides)
    return spec



def make_toy_voc(root, seed=0, n_voc_train=24, n_voc_val=20, n_sbd_only=80, num_classes=4):
    """The demo variant in the VOC layout (tests use small ones); returns the ids per list."""
    spec = variant("demo", seed=seed, classes=num_classes, voc_train=n_voc_train,
                   n_train=n_voc_train + n_sbd_only, n_val=n_voc_val)
    return make_dataset(root, spec)
