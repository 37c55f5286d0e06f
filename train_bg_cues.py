"""Train the saliency network and write background cues for every train_aug image (method §3)."""
from cores.cue_scripts import main

if __name__ == "__main__":
    main("bg", __doc__)
