-- The client addresses (IPv6: their /64) that signed in to an account
-- successfully: for 30 days (WOWCHAT_SIGN_IN_KNOWN_ADDRESS_DAYS) such an
-- address keeps its own wrong-password budget when the account's budget,
-- shared by every other address, is spent, so guesses from elsewhere cannot
-- lock the owner out. The key is an HMAC of the workspace, the email and
-- the address (rate_limit_secret): no email or address is stored. A row
-- past the window is ignored (and refreshed by the next success there).
CREATE TABLE sign_in_known_addresses (
    key bytea PRIMARY KEY,
    last_success timestamptz NOT NULL
);
