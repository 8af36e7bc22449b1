"""Train a segmentation_models U-Net for 7 classes with pixel_softmax + pixel_cce.

Run: python examples/train_unet.py   (about a minute on 2 CPU cores)

The whole recipe is the three marked lines; everything else is ordinary Keras.
"""

import numpy as np

import sm_pixel_ce  # (1) registers "pixel_softmax", "pixel_cce", "pixel_bce"

# isort: split
import segmentation_models as sm  # after sm_pixel_ce: no SM_FRAMEWORK needed

from sm_pixel_ce.data import make_scenes
from sm_pixel_ce.flavor import keras

images, masks = make_scenes(96, size=64, seed=0)  # uint8 masks of class indices 0..6
x_train, y_train, x_val, y_val = images[24:], masks[24:], images[:24], masks[:24]

model = sm.Unet(
    "resnet18", encoder_weights=None, classes=7, activation="pixel_softmax"
)  # (2) softmax over the class axis of every pixel
model.compile(
    "adam", loss=sm_pixel_ce.PixelCategoricalCrossentropy(class_weights=[0.3, 1, 1, 1, 1, 1, 1])
)  # (3) or simply loss="pixel_cce"
model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=6, batch_size=8, verbose=2)

model.save("unet_7_classes.keras")
reloaded = keras.models.load_model("unet_7_classes.keras")  # no custom_objects needed
predicted = reloaded.predict(x_val, verbose=0).argmax(-1)
print("validation pixel accuracy:", float(np.mean(predicted == y_val)))
