"""Reward models as the reward of an RL run: TRL reward functions (:func:`trl_reward_func`) and
OpenRLHF's Python-file route (:mod:`rewardlab.rl.openrlhf`)."""

from __future__ import annotations

from rewardlab.rl.trl import AsyncRewardFunc, RewardFunc, completion_text, trl_reward_func

__all__ = ["AsyncRewardFunc", "RewardFunc", "completion_text", "trl_reward_func"]
