"""The crop: kinds, the policy value, window geometry, the pixel cut, the Keras layer."""
