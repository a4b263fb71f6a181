"""A scripted MiniGrid expert: shortest path on the full grid to the goal, through doors, fetching keys.

It acts on observations only (no access to the env object): the `map` field (full grid with the agent
drawn in; the collector turns `env.map` on for it) and the `grid` view, whose agent cell shows what the
agent carries. Each step:

1. If the goal is reachable (empty/floor/goal cells, open or closed doors, locked doors whose key the
   agent carries), take the first action of a shortest path over (x, y, direction) states; a forward move
   into a closed or locked door is preceded by `toggle`.
2. Otherwise, carrying nothing: walk to face the key of a locked door's colour and `pickup`.
   Carrying a key: walk to face the locked door of its colour and `toggle`.
3. Otherwise (no goal, or no plan): a random move.

Distances come from one backwards breadth-first search per target, cached on the grid without the
agent, so a static layout is searched once per phase of an episode. It solves Empty, DoorKey, FourRooms,
MultiRoom, Unlock-style layouts; envs with moving obstacles or missions (Fetch, BabyAI) are not its job.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = 0, 1, 2, 3, 4, 5
DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # minigrid's DIR_TO_VEC: right, down, left, up
UNSEEN, EMPTY, WALL, FLOOR, DOOR, KEY, BALL, BOX, GOAL, LAVA, AGENT = range(11)
OPEN, CLOSED, LOCKED = 0, 1, 2


def _check_vocabulary() -> None:
    from minigrid.core.constants import OBJECT_TO_IDX, STATE_TO_IDX

    names = ("unseen", "empty", "wall", "floor", "door", "key", "ball", "box", "goal", "lava", "agent")
    if any(OBJECT_TO_IDX.get(name) != i for i, name in enumerate(names)) or STATE_TO_IDX != {
        "open": OPEN,
        "closed": CLOSED,
        "locked": LOCKED,
    }:
        raise RuntimeError("minigrid's object/state vocabulary changed; update dreamstream.collect.expert")


class MiniGridExpert:
    """Policy interface (see dreamstream.collect.policies); needs the `map` and `grid` fields."""

    name = "expert"
    version = 0

    def __init__(self, spec: EpisodeSpec, seed: int | None = None):
        missing = [f for f in ("map", "grid") if f not in spec.observations]
        if missing:
            raise UserError(f"the MiniGrid expert needs the fields {missing} (a MiniGrid env with env.map=true)")
        if spec.action.kind != "discrete" or (spec.action.n or 0) < TOGGLE + 1:
            raise UserError(f"the MiniGrid expert needs MiniGrid's 7 actions; this env has {spec.action.to_json()}")
        _check_vocabulary()
        self.rng = np.random.default_rng(seed)
        self._cache: dict[bytes, np.ndarray | None] = {}

    def reset(self, n_envs: int) -> None:
        self._cache.clear()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        maps, views = obs["map"], obs["grid"]
        return np.array([self.act_one(maps[i], views[i]) for i in range(len(maps))], np.int64)

    # one env ---------------------------------------------------------------------------------------

    def act_one(self, grid_map: np.ndarray, view: np.ndarray) -> int:
        agent = np.argwhere(grid_map[:, :, 0] == AGENT)
        if len(agent) != 1:
            return self._wander()
        x, y = (int(v) for v in agent[0])
        d = int(grid_map[x, y, 2])
        static = grid_map.copy()
        static[x, y] = (EMPTY, 0, 0)
        carried = view[view.shape[0] // 2, view.shape[1] - 1]
        carrying = (int(carried[0]), int(carried[1])) if carried[0] not in (UNSEEN, EMPTY) else None

        goals = np.argwhere(static[:, :, 0] == GOAL)
        if len(goals):
            action = self._step_towards(static, carrying, "goal", x, y, d)
            if action is not None:
                return self._through_doors(static, x, y, d, action)
        locked = [tuple(p) for p in np.argwhere((static[:, :, 0] == DOOR) & (static[:, :, 2] == LOCKED))]
        if carrying is None:
            colours = {int(static[p][1]) for p in locked}
            action = self._step_towards(static, carrying, ("key", tuple(sorted(colours))), x, y, d)
            if action is not None:
                return PICKUP if action == "arrived" else self._through_doors(static, x, y, d, action)
        elif carrying[0] == KEY and any(int(static[p][1]) == carrying[1] for p in locked):
            action = self._step_towards(static, carrying, ("door", carrying[1]), x, y, d)
            if action is not None:
                return TOGGLE if action == "arrived" else self._through_doors(static, x, y, d, action)
        return self._wander()

    def _wander(self) -> int:
        return int(self.rng.choice((LEFT, RIGHT, FORWARD, FORWARD)))

    @staticmethod
    def _through_doors(static: np.ndarray, x: int, y: int, d: int, action: int) -> int:
        if action == FORWARD:
            fx, fy = x + DIRS[d][0], y + DIRS[d][1]
            if static[fx, fy, 0] == DOOR and static[fx, fy, 2] != OPEN:
                return TOGGLE
        return action

    def _step_towards(self, static, carrying, target, x: int, y: int, d: int):
        """The action that lowers the distance to `target`, "arrived" when there, None if unreachable."""
        key = static.tobytes() + repr((static.shape, carrying, target)).encode()
        dist = self._cache.get(key, ...)
        if dist is ...:
            if len(self._cache) > 64:
                self._cache.clear()
            dist = self._cache[key] = _distances(static, carrying, target)
        if dist is None or dist[x, y, d] < 0:
            return None
        here = dist[x, y, d]
        if here == 0:
            return "arrived"
        for action, (nx, ny, nd) in (
            (FORWARD, (x + DIRS[d][0], y + DIRS[d][1], d)),
            (LEFT, (x, y, (d - 1) % 4)),
            (RIGHT, (x, y, (d + 1) % 4)),
        ):
            if 0 <= nx < dist.shape[0] and 0 <= ny < dist.shape[1] and dist[nx, ny, nd] == here - 1:
                if action != FORWARD or _passable(static[nx, ny], carrying):
                    return action
        return None


def _passable(cell: np.ndarray, carrying) -> bool:
    obj, colour, state = int(cell[0]), int(cell[1]), int(cell[2])
    if obj in (EMPTY, FLOOR, GOAL):
        return True
    if obj == DOOR:
        if state == LOCKED:
            return carrying is not None and carrying == (KEY, colour)
        return True  # open, or closed (the expert toggles it first)
    return False


def _distances(static: np.ndarray, carrying, target) -> np.ndarray | None:
    """Backwards BFS: dist[x, y, d] = moves from state (x, y, d) to the target; -1 where unreachable."""
    width, height = static.shape[:2]
    passable = np.zeros((width, height), bool)
    for i in range(width):
        for j in range(height):
            passable[i, j] = _passable(static[i, j], carrying)
    dist = np.full((width, height, 4), -1, np.int32)
    queue: deque[tuple[int, int, int]] = deque()
    if target == "goal":
        for gx, gy in np.argwhere(static[:, :, 0] == GOAL):
            for d in range(4):
                dist[gx, gy, d] = 0
                queue.append((int(gx), int(gy), d))
    else:
        kind, colours = target
        if kind == "key":
            mask = static[:, :, 0] == KEY
            if colours:
                mask &= np.isin(static[:, :, 1], colours)
        else:
            mask = (static[:, :, 0] == DOOR) & (static[:, :, 2] == LOCKED) & (static[:, :, 1] == colours)
        for tx, ty in np.argwhere(mask):
            for d, (dx, dy) in enumerate(DIRS):  # stand on the cell before the target, facing it
                sx, sy = int(tx) - dx, int(ty) - dy
                if 0 <= sx < width and 0 <= sy < height and passable[sx, sy] and dist[sx, sy, d] < 0:
                    dist[sx, sy, d] = 0
                    queue.append((sx, sy, d))
    if not queue:
        return None
    while queue:
        x, y, d = queue.popleft()
        step = dist[x, y, d] + 1
        # predecessors: turned into d (from d+1 by LEFT, from d-1 by RIGHT), or moved forward into (x, y)
        for pd in ((d + 1) % 4, (d - 1) % 4):
            if dist[x, y, pd] < 0:
                dist[x, y, pd] = step
                queue.append((x, y, pd))
        px, py = x - DIRS[d][0], y - DIRS[d][1]
        if 0 <= px < width and 0 <= py < height and passable[px, py] and passable[x, y] and dist[px, py, d] < 0:
            dist[px, py, d] = step
            queue.append((px, py, d))
    return dist
