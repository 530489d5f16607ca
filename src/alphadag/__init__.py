"""alphadag."""
