// The large world's minimap: the whole field in a corner of the canvas, with what this
// client knows of it (the server sends each player only what is near them): our avatar
// highlighted, the other known avatars, orbs as dots, the interest area (the cells whose
// entities we are sent) and the camera's viewport. Pure drawing on a 2D context.

/**
 * The interest area around (x, y): the (2 * reach + 1)² cells of `cell` units around
 * the cell of that point, as the server computes it (world.interest()), cut to the field.
 * Returns {x0, y0, x1, y1} in world units, or null without an interest grid.
 */
export function interestArea(x, y, config) {
  const cell = config.interest_cell;
  const reach = config.interest_reach ?? 1;
  if (!cell || x === undefined || y === undefined) return null;
  const cx = Math.floor(x / cell);
  const cy = Math.floor(y / cell);
  return {
    x0: Math.max(0, (cx - reach) * cell),
    y0: Math.max(0, (cy - reach) * cell),
    x1: Math.min(config.width, (cx + reach + 1) * cell),
    y1: Math.min(config.height, (cy + reach + 1) * cell),
  };
}

/** Where the minimap goes on a canvas of cssW × cssH: a square in the top-right corner. */
export function minimapBox(cssW, cssH, world) {
  const margin = 12;
  const side = Math.round(Math.max(80, Math.min(190, 0.3 * Math.min(cssW, cssH))));
  const aspect = world.height / world.width;
  const w = aspect <= 1 ? side : Math.round(side / aspect);
  const h = aspect <= 1 ? Math.round(side * aspect) : side;
  return { x: cssW - margin - w, y: margin, w, h };
}

/**
 * Draw the minimap. `map`: {orbs: [{x, y}], avatars: [{pid, x, y, own}],
 * interest: {x0, y0, x1, y1} | null, viewport: {x0, y0, x1, y1} | null}; `color(pid)`
 * an avatar's colour. Returns what was drawn, for the page's test hook.
 */
export function drawMinimap(ctx, box, world, map, color) {
  const sx = box.w / world.width;
  const sy = box.h / world.height;
  const X = (x) => box.x + x * sx;
  const Y = (y) => box.y + y * sy;
  ctx.save();
  ctx.fillStyle = "rgba(8, 12, 22, 0.95)";
  ctx.strokeStyle = "rgba(148, 163, 184, 0.45)";
  ctx.lineWidth = 1;
  ctx.fillRect(box.x, box.y, box.w, box.h);
  ctx.strokeRect(box.x - 0.5, box.y - 0.5, box.w + 1, box.h + 1);
  ctx.beginPath();
  ctx.rect(box.x, box.y, box.w, box.h);
  ctx.clip();

  // The interest grid's cells, faintly, and our interest area.
  if (world.interest_cell) {
    ctx.strokeStyle = "rgba(120, 150, 200, 0.12)";
    ctx.beginPath();
    for (let gx = world.interest_cell; gx < world.width; gx += world.interest_cell) {
      ctx.moveTo(Math.round(X(gx)) + 0.5, box.y);
      ctx.lineTo(Math.round(X(gx)) + 0.5, box.y + box.h);
    }
    for (let gy = world.interest_cell; gy < world.height; gy += world.interest_cell) {
      ctx.moveTo(box.x, Math.round(Y(gy)) + 0.5);
      ctx.lineTo(box.x + box.w, Math.round(Y(gy)) + 0.5);
    }
    ctx.stroke();
  }
  const rect = (r) => [X(r.x0), Y(r.y0), (r.x1 - r.x0) * sx, (r.y1 - r.y0) * sy];
  if (map.interest) {
    ctx.fillStyle = "rgba(45, 212, 191, 0.1)";
    ctx.fillRect(...rect(map.interest));
    ctx.strokeStyle = "rgba(45, 212, 191, 0.7)";
    ctx.setLineDash([3, 2]);
    ctx.strokeRect(...rect(map.interest));
    ctx.setLineDash([]);
  }
  if (map.viewport) {
    ctx.strokeStyle = "rgba(255, 255, 255, 0.55)";
    ctx.strokeRect(...rect(map.viewport));
  }

  ctx.fillStyle = "#fbbf24";
  for (const o of map.orbs) ctx.fillRect(Math.round(X(o.x)) - 1, Math.round(Y(o.y)) - 1, 2, 2);
  let own = null;
  for (const a of map.avatars) {
    if (a.own) {
      own = a;
      continue;
    }
    ctx.beginPath();
    ctx.arc(X(a.x), Y(a.y), 2.5, 0, Math.PI * 2);
    ctx.fillStyle = color(a.pid);
    ctx.fill();
  }
  if (own) {
    ctx.beginPath();
    ctx.arc(X(own.x), Y(own.y), 4, 0, Math.PI * 2);
    ctx.fillStyle = color(own.pid);
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
  }
  ctx.restore();
  return {
    box: { ...box },
    orbs: map.orbs.length,
    avatars: map.avatars.length,
    own: own ? { x: own.x, y: own.y } : null,
    interest: map.interest ? { ...map.interest } : null,
    viewport: map.viewport ? { ...map.viewport } : null,
  };
}
