"""Aliyun vision API compatibility proxy in front of the AWS AI Solution Kit."""
