"""The users API as the seed documents write it (seeds/000: "Sync vs Async PostgreSQL"),
to measure pgarena's ORM stacks against: straightforward code, every default left alone.

    SEED_STYLE=sync|async DATABASE_URL=postgresql://... uvicorn --factory seed_app:create_app

What is the seed's, on purpose: a session opened and closed in each endpoint, `query(...)
.filter(...).first()` (sync) or `select(...)` (async), the engine's default pool (5 + 10
overflow), a dict or ORM object returned and validated by FastAPI, `response_model` on the
async side only, as in the seed. What is not: the seed's `create_all` (pgarena's
migrations made the tables) and its error handling of writes (this app only reads).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict
from sqlalchemy import String, create_engine, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(100))


class UserResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    email: str


def _url(driver: str) -> str:
    url = os.environ["DATABASE_URL"]
    return "postgresql+" + driver + "://" + url.split("://", 1)[1]


def sync_app() -> FastAPI:
    engine = create_engine(_url("psycopg2"))
    SessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)
    app = FastAPI()

    @app.get("/users/{user_id}")
    def get_user(user_id: int):
        db = SessionLocal()
        try:
            user = db.query(User).filter(User.id == user_id).first()
            if user is None:
                raise HTTPException(status_code=404, detail="User not found")
            return {"id": user.id, "username": user.username, "email": user.email}
        finally:
            db.close()

    return app


def async_app() -> FastAPI:
    engine = create_async_engine(_url("asyncpg"))
    async_session_maker = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    app = FastAPI()

    @app.get("/users/{user_id}", response_model=UserResponse)
    async def get_user(user_id: int):
        async with async_session_maker() as session:
            result = await session.execute(select(User).filter(User.id == user_id))
            user = result.scalar_one_or_none()
            if user is None:
                raise HTTPException(status_code=404, detail="User not found")
            return user

    return app


def create_app() -> FastAPI:
    """The sync or the async seed app, as SEED_STYLE says (default sync)."""
    return async_app() if os.environ.get("SEED_STYLE") == "async" else sync_app()
