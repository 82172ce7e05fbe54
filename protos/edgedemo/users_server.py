"""In-memory `edgedemo.users.v1.UserService`.

`GetMe` names the caller from request metadata: the gateway authenticates the
client and forwards who it is, so the first of `IDENTITY_KEYS` present wins.
"""
from __future__ import annotations

import re

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from edgedemo import errors, users_pb2, users_pb2_grpc

IDENTITY_KEYS = ("x-user-id", "x-edge-user", "x-authenticated-user")
SEED_TIME = "2024-01-15T09:30:00Z"

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_IMMUTABLE_USER_FIELDS = frozenset({"user_id", "create_time"})
_USER_TYPE = "edgedemo.example.com/User"

Violation = tuple[str, str]


def _timestamp(text: str | None = None) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    if text is None:
        stamp.GetCurrentTime()
    else:
        stamp.FromJsonString(text)
    return stamp


def _seed() -> list[users_pb2.User]:
    R = users_pb2.Role
    return [
        users_pb2.User(user_id="ada", display_name="Ada Lovelace", email="ada@example.com", role=R.ADMIN,
                       labels={"team": "engines"}, create_time=_timestamp(SEED_TIME)),
        users_pb2.User(user_id="alan", display_name="Alan Turing", email="alan@example.com", role=R.LIBRARIAN,
                       labels={"team": "codebreaking"}, create_time=_timestamp(SEED_TIME)),
        users_pb2.User(user_id="grace", display_name="Grace Hopper", email="grace@example.com", role=R.READER,
                       create_time=_timestamp(SEED_TIME)),
    ]


def _user_violations(user: users_pb2.User, prefix: str = "user") -> list[Violation]:
    problems: list[Violation] = []
    if not user.display_name.strip():
        problems.append((f"{prefix}.display_name", "is required"))
    if not _EMAIL.fullmatch(user.email):
        problems.append((f"{prefix}.email", f"must be an email address, got {user.email!r}"))
    return problems


class UsersServicer(users_pb2_grpc.UserServiceServicer):
    def __init__(self, *, seed: bool = True, identity_keys: tuple[str, ...] = IDENTITY_KEYS) -> None:
        self.users: dict[str, users_pb2.User] = {user.user_id: user for user in (_seed() if seed else [])}
        self.identity_keys = identity_keys
        self._next_id = 1

    async def _user(self, context: grpc.aio.ServicerContext, user_id: str, field: str = "user_id") -> users_pb2.User:
        if not user_id:
            await errors.invalid_argument(context, (field, "is required"))
        user = self.users.get(user_id)
        if user is None:
            await errors.not_found(context, _USER_TYPE, user_id)
        return user

    async def _email_free(self, context: grpc.aio.ServicerContext, email: str, owner: str) -> None:
        taken_by = next((u.user_id for u in self.users.values() if u.email.lower() == email.lower()), None)
        if taken_by is not None and taken_by != owner:
            await errors.already_exists(context, f"email {email!r} is already registered", "EMAIL_TAKEN", email=email)

    async def GetUser(self, request, context):
        return await self._user(context, request.user_id)

    async def GetMe(self, request, context):
        metadata = {m.key: m.value for m in context.invocation_metadata() or ()}
        subject = next((metadata[k] for k in self.identity_keys if isinstance(metadata.get(k), str) and metadata[k]), None)
        if subject is None:
            await errors.unauthenticated(
                context, f"no caller identity: expected one of {', '.join(self.identity_keys)}", "NO_IDENTITY"
            )
        return await self._user(context, subject)

    async def ListUsers(self, request, context):
        if request.user_ids:
            users = [await self._user(context, user_id, "user_ids") for user_id in request.user_ids]
        else:
            users = list(self.users.values())
        if request.role:
            users = [user for user in users if user.role == request.role]
        return users_pb2.ListUsersResponse(users=users)

    async def CreateUser(self, request, context):
        user_id = request.user_id or request.user.user_id
        problems = _user_violations(request.user)
        if user_id and not _ID.fullmatch(user_id):
            problems.append(("user_id", "must be 1-63 lower-case letters, digits or hyphens"))
        if request.user_id and request.user.user_id and request.user_id != request.user.user_id:
            problems.append(("user.user_id", "must match user_id when both are given"))
        if problems:
            await errors.invalid_argument(context, *problems)
        if user_id in self.users:
            await errors.already_exists(context, f"user {user_id!r} already exists", "USER_EXISTS", user_id=user_id)
        await self._email_free(context, request.user.email, user_id)
        if not user_id:
            while f"user-{self._next_id}" in self.users:
                self._next_id += 1
            user_id = f"user-{self._next_id}"
        user = users_pb2.User()
        user.CopyFrom(request.user)
        user.user_id = user_id
        user.create_time.CopyFrom(_timestamp())
        self.users[user_id] = user
        return user

    async def UpdateUser(self, request, context):
        user = await self._user(context, request.user.user_id, "user.user_id")
        paths = list(request.update_mask.paths)
        updated = users_pb2.User()
        if not paths or paths == ["*"]:
            updated.CopyFrom(request.user)
        else:
            problems: list[Violation] = []
            for path in paths:
                if path in _IMMUTABLE_USER_FIELDS:
                    problems.append(("update_mask", f"{path!r} cannot be changed"))
                elif not field_mask_pb2.FieldMask(paths=[path]).IsValidForDescriptor(users_pb2.User.DESCRIPTOR):
                    problems.append(("update_mask", f"{path!r} is not a field of User"))
            if problems:
                await errors.invalid_argument(context, *problems)
            updated.CopyFrom(user)
            request.update_mask.MergeMessage(
                request.user, updated, replace_message_field=True, replace_repeated_field=True
            )
        updated.user_id = user.user_id
        updated.create_time.CopyFrom(user.create_time)
        if problems := _user_violations(updated):
            await errors.invalid_argument(context, *problems)
        await self._email_free(context, updated.email, user.user_id)
        user.CopyFrom(updated)
        return user
