"""Accounts: users, organisations' seller profiles, sessions (JWT + rotating refresh tokens),
password reset, API keys with rate limits, roles.

Emits UserRegistered, UserLoggedIn, UserLoggedOut, PasswordResetRequested, PasswordResetCompleted,
UserCreated, ApiKeyCreated, ApiKeyRevoked, OrganizationUpdated.
"""
