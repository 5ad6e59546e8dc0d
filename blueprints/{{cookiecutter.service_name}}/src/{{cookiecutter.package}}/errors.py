"""The error types of the API; their names are part of the wire contract.

Each error reaches the client with its name both in `extensions.type` and, for
Krypton Auth's existing clients, as a top-level `type`.
"""


class AuthError(Exception):
    """An error the client is meant to see, with a safe message."""

    message = "Request failed."
    #: More for the client, beside the type in `extensions`.
    details: dict[str, object] = {}

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def type(self) -> str:
        return type(self).__name__


class EmailAlreadyExistsError(AuthError):
    message = "Email already exists in the database."


class AlreadyExistsError(AuthError):
    """A duplicate value of a unique field: `<Field>AlreadyExistsError`."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"This {field} is already taken.")

    @property
    def type(self) -> str:
        return f"{self.field[0].upper()}{self.field[1:]}AlreadyExistsError"


class WrongPasswordError(AuthError):
    message = "Password does not match."


class UpdatePasswordTooLateError(AuthError):
    message = "The password recovery link has expired; ask for a new one."


class EmailNotSentError(AuthError):
    message = "Email could not be sent."


class UserNotFoundError(AuthError):
    message = "Wrong email or password."


class UnauthorizedError(AuthError):
    message = "Request not authorized."


class TokenEncryptionError(AuthError):
    message = "User token encryption failed."


class EmailAlreadyConfirmedError(AuthError):
    message = "Email already confirmed."


class UserValidationError(AuthError):
    message = "User fields do not pass validation."


class AlreadyLoggedInError(AuthError):
    message = "User already logged in."


class EncryptionFailedError(AuthError):
    message = "Encryption failed."


class TooManyRequestsError(AuthError):
    message = "Too many failed attempts; try again later."


class BadRequestError(AuthError):
    """A request the GraphQL endpoint refuses before executing it."""

    message = "Bad request."


class RequestTooLargeError(BadRequestError):
    message = "The request body is too large."


class QueryTooComplexError(BadRequestError):
    message = "The query is too deep or too large."


class GraphQLValidationError(AuthError):
    message = "The query is not valid for this schema."


class InternalServerError(AuthError):
    message = "Something went wrong; the error has been logged."


class UnsupportedMediaTypeError(BadRequestError):
    message = "The GraphQL endpoint takes application/json only."


class MethodNotAllowedError(BadRequestError):
    message = "GET runs queries only; send mutations with POST."


class TooManyPasswordChecksError(BadRequestError):
    """More than one root field that hashes a password in one request."""

    message = (
        "A request may check or set one password at most: send login, register,"
        " updateMe, deleteMe and resetMyPassword in separate requests."
    )


# Second factors (mfa.py).


class MfaRequiredError(AuthError):
    """login's answer for a user with a second factor: no tokens, a challenge."""

    message = (
        "This account has a second factor: send extensions.challenge with a code"
        " of your authenticator app (or a recovery code) to loginWithSecondFactor,"
        " or with a passkey to loginWithPasskey (extensions.factors says which it has)."
    )

    def __init__(self, challenge: str, factors: list[str]) -> None:
        super().__init__()
        self.details = {"challenge": challenge, "factors": factors}


class MfaEnrolmentRequiredError(AuthError):
    """login's answer, where second factors are required, for a user without one."""

    message = (
        "This service requires a second factor: add one with extensions.challenge"
        " (startTotpEnrolment and confirmTotpEnrolment, or passkeyRegistrationOptions"
        " and registerPasskey), then completeMfaEnrolment logs in."
    )

    def __init__(self, challenge: str) -> None:
        super().__init__()
        self.details = {"challenge": challenge}


class SecondFactorRequiredError(AuthError):
    message = (
        "This service requires a second factor: add another before removing this one."
    )


class WrongMfaCodeError(AuthError):
    message = "The code is wrong, already used or expired."


class MfaAlreadyEnabledError(AuthError):
    message = "This account already has a second factor."


class MfaDisabledError(AuthError):
    message = "Second factors are turned off on this service."


class NoSecondFactorError(AuthError):
    message = "This account has no second factor."


# Passkeys (passkeys.py).


class WrongPasskeyError(AuthError):
    message = (
        "The passkey could not be verified: wrong origin or relying party, bad"
        " signature, flags or sign counter, or an unknown, used or expired challenge."
    )


class PasskeyNotFoundError(AuthError):
    message = "No such passkey is registered."


class PasskeyAlreadyRegisteredError(AuthError):
    message = "This passkey is registered already."


class PasswordlessDisabledError(AuthError):
    message = "Logging in with a passkey alone is not enabled on this service."


class AccountDisabledError(AuthError):
    message = "This account is disabled."


class LastAdminError(AuthError):
    message = "The last admin cannot lose the admin role, be disabled or be deleted."
