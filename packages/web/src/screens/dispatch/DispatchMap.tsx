import { memo } from 'react';
import type { Timing } from '../../components/Timing.tsx';
import {
  fitProjection,
  VEHICLE_STATUS_WORDS,
  type MapPoint,
  type MapSite,
  type Vehicle,
  type Visit,
} from '../../lib/dispatch.ts';

const WIDTH = 520;
const HEIGHT = 460;
const PAD = 36;

const TIMING_FILL: Record<Timing, string> = { on_time: '#1b5e20', at_risk: '#8a4b00', breached: '#a51d1d' };
const TIMING_SIGN: Record<Timing, string> = { on_time: '✓', at_risk: '!', breached: '✕' };

export interface MapVisit {
  visit: Visit;
  timing: Timing;
}

/** Where a car is drawn: its last reported position, else its base (said so in its label). */
export function carPoint(v: Vehicle): (MapPoint & { atBase: boolean }) | null {
  if (v.lat !== null && v.lon !== null) return { lat: v.lat, lon: v.lon, atBase: false };
  if (v.baseLat !== null && v.baseLon !== null) return { lat: v.baseLat, lon: v.baseLon, atBase: true };
  return null;
}

/**
 * The board's map, drawn from the board's own data with no tiles and no network: sites (squares),
 * visits (circles in their deadline colour with the same sign as the list, ✓ ! ✕) and cars
 * (call sign in a box), on a plain equirectangular projection fitted to the points. An allocated car
 * is joined to its visit by a dashed line. Everything drawn is in the lists beside it as text; the
 * map is a picture for the eye, described to screen readers by its title.
 */
export const DispatchMap = memo(function DispatchMap({
  visits,
  vehicles,
  sites,
}: {
  visits: MapVisit[];
  vehicles: Vehicle[];
  sites: MapSite[];
}) {
  const placedVisits = visits.filter(
    (v): v is MapVisit & { visit: Visit & MapPoint } => v.visit.lat !== null && v.visit.lon !== null,
  );
  const placedCars = vehicles.flatMap((v) => {
    const p = carPoint(v);
    return p ? [{ vehicle: v, point: p }] : [];
  });
  // Fitted to everything drawn (a few hundred points: cheap enough to do on each render).
  const points: MapPoint[] = [
    ...sites,
    ...placedVisits.map((v) => v.visit),
    ...placedCars.map((c) => c.point),
  ];
  const project = fitProjection(points, WIDTH, HEIGHT, PAD);
  const byId = new Map(placedVisits.map((v) => [v.visit.visitId, v.visit]));
  const unplaced = vehicles.length - placedCars.length + (visits.length - placedVisits.length);

  return (
    <figure className="dispatch-map-figure">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        className="dispatch-map"
        data-testid="dispatch-map"
        role="img"
        aria-labelledby="dispatch-map-title"
      >
        <title id="dispatch-map-title">
          {`Map of ${placedCars.length} cars, ${placedVisits.length} visits and ${sites.length} sites (drawn from their positions; no street map)`}
        </title>
        <rect x={0} y={0} width={WIDTH} height={HEIGHT} className="dispatch-map-ground" />
        {placedCars.map(({ vehicle, point }) => {
          const target = vehicle.visitId ? byId.get(vehicle.visitId) : undefined;
          if (!target) return null;
          const a = project(point);
          const b = project(target);
          return (
            <line
              key={`link-${vehicle.vehicleId}`}
              x1={a.x}
              y1={a.y}
              x2={b.x}
              y2={b.y}
              className="dispatch-map-link"
            />
          );
        })}
        {sites.map((s) => {
          const { x, y } = project(s);
          return (
            <g key={`site-${s.siteId}`} data-site-id={s.siteId} className="dispatch-map-site">
              <title>{`Site: ${s.name}`}</title>
              <rect x={x - 6} y={y - 6} width={12} height={12} />
              {/* Below the square (a car at its base is drawn on it), towards the middle of the map. */}
              <text x={x > WIDTH / 2 ? x + 6 : x - 6} y={y + 22} textAnchor={x > WIDTH / 2 ? 'end' : 'start'}>
                {s.name}
              </text>
            </g>
          );
        })}
        {placedVisits.map(({ visit, timing }) => {
          const { x, y } = project(visit);
          return (
            <VisitMarker
              key={`visit-${visit.visitId}`}
              visitId={visit.visitId}
              reason={visit.reason}
              timing={timing}
              x={x}
              y={y}
            />
          );
        })}
        {placedCars.map(({ vehicle, point }) => {
          const { x, y } = project(point);
          return (
            <CarMarker
              key={`car-${vehicle.vehicleId}`}
              vehicle={vehicle}
              atBase={point.atBase}
              lat={point.lat}
              lon={point.lon}
              x={x}
              y={y}
            />
          );
        })}
      </svg>
      <figcaption className="dispatch-map-legend">
        <span>■ site</span> <span>● visit (✓ on time, ! at risk, ✕ breached)</span>{' '}
        <span>▭ car (call sign)</span> <span>- - - car to its visit</span>
        {unplaced > 0 && <span> · {unplaced} without a position are in the lists only</span>}
      </figcaption>
    </figure>
  );
});

/** A visit on the map (drawn again only when it moves or its state changes). */
const VisitMarker = memo(function VisitMarker({
  visitId,
  reason,
  timing,
  x,
  y,
}: {
  visitId: string;
  reason: string;
  timing: Timing;
  x: number;
  y: number;
}) {
  return (
    <g data-visit-id={visitId} data-timing={timing} className="dispatch-map-visit">
      <title>{`Visit: ${reason || 'home visit'} (${timing.replace('_', ' ')})`}</title>
      <circle cx={x} cy={y} r={9} fill={TIMING_FILL[timing]} />
      <text x={x} y={y + 4} textAnchor="middle" className="dispatch-map-sign">
        {TIMING_SIGN[timing]}
      </text>
    </g>
  );
});

/** A car on the map: a position report redraws this car alone (the others' props are unchanged). */
const CarMarker = memo(function CarMarker({
  vehicle,
  atBase,
  lat,
  lon,
  x,
  y,
}: {
  vehicle: Vehicle;
  atBase: boolean;
  lat: number;
  lon: number;
  x: number;
  y: number;
}) {
  const w = Math.max(34, vehicle.callSign.length * 7 + 10);
  return (
    <g
      data-vehicle-id={vehicle.vehicleId}
      data-position-at={vehicle.positionAtMs ?? ''}
      data-lat={lat}
      data-lon={lon}
      data-status={vehicle.status}
      className={`dispatch-map-car dispatch-map-car-${vehicle.status}`}
      transform={`translate(${x.toFixed(1)} ${y.toFixed(1)})`}
    >
      <title>
        {`Car ${vehicle.callSign}: ${VEHICLE_STATUS_WORDS[vehicle.status]}${atBase ? ' (at its base: no position reported)' : ''}`}
      </title>
      <rect x={-w / 2} y={-10} width={w} height={20} rx={4} />
      <text x={0} y={4} textAnchor="middle">
        {vehicle.callSign}
      </text>
    </g>
  );
});
