"""Scenes: Blender-format loading and saving, pinhole cameras and rays, procedural scenes.

This layer imports no other hero_lite module.
"""

from hero_lite.scenes.blender import Scene, focal_from_camera_angle, held_out_indices, load_scene, save_scene
from hero_lite.scenes.cameras import camera_rays, hemisphere_poses, look_at, pixel_rays, ring_poses
from hero_lite.scenes.synth import SCENE_NAMES, make_scene

__all__ = [
    "SCENE_NAMES",
    "Scene",
    "camera_rays",
    "focal_from_camera_angle",
    "held_out_indices",
    "hemisphere_poses",
    "load_scene",
    "look_at",
    "make_scene",
    "pixel_rays",
    "ring_poses",
    "save_scene",
]
