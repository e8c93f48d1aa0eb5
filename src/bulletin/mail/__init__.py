"""Sending digests: subscribers, SMTP delivery, DKIM signing and the send loop."""
