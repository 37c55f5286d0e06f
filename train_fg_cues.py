"""Train the CAM network and write foreground cues for every train_aug image (method §3)."""
from cores.cue_scripts import main

if __name__ == "__main__":
    main("fg", __doc__)
