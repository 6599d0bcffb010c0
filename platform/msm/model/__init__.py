"""The MSM model: sentence encoder → document encoder over masked sentence vectors → projection heads."""
