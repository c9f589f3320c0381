from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import SessionPreset


class PresetSerializer(serializers.ModelSerializer[SessionPreset]):
    """What a user may know about a preset: never its instructions or tools."""

    class Meta:
        model = SessionPreset
        fields = ["slug", "name", "description", "session_type", "allowed_overrides"]
        read_only_fields = fields


class MintRequestSerializer(serializers.Serializer[Any]):
    preset = serializers.SlugField(required=False, allow_blank=False, max_length=64)
    overrides = serializers.DictField(required=False, default=dict)
