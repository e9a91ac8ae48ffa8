"""OAuth 2.0 for XOAUTH2 IMAP logins: consent (``meta-watcher auth``), storage, refresh.

Sources: RFC 6749 (OAuth 2.0: 4.1 authorization code grant, 6 refreshing an access token),
RFC 7636 (PKCE), RFC 8252 (native apps: loopback redirect 7.3), RFC 8628 (device authorization
grant), Google's "OAuth 2.0 for mobile & desktop apps" and Microsoft identity platform docs
(``consumers`` tenant for personal Outlook.com accounts; scope
``https://outlook.office.com/IMAP.AccessAsUser.All``).

The user brings their own client id (and, for Google desktop clients, the client secret, which
Google documents as not confidential for installed apps). The refresh token is kept in a 0600
file or the system keyring; the access token is refreshed when it expires within
REFRESH_MARGIN_SECONDS. HTTP goes only to the configured endpoints, with the standard library's
urllib. No token ever appears in a log line, an error message or a repr.

``http``: the token endpoint's requests and errors; ``tokens``: provider presets, the stored
grant and its refresh; ``flows``: the consent flows of ``meta-watcher auth``.
"""
