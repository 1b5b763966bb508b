"""Clients: the customers an organisation bills. Emits ClientCreated, ClientUpdated, ClientDeleted."""
