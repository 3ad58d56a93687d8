"""Webhook delivery for an email marketing platform: the domain shared by every Lambda function."""
