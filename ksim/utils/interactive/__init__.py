"""The interactive visualizer (SPEC §2): a base class and its MuJoCo-viewer implementation."""

from ksim.utils.interactive.base import InteractiveVisualizer, InteractiveVisualizerConfig

__all__ = ["InteractiveVisualizer", "InteractiveVisualizerConfig"]
