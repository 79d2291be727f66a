/**
 * Stand-ins for the PostgreSQL read queries and license-row statements that
 * `./lease_queries.ts`, `./audit_queries.ts`, `./status_queries.ts` and
 * `./license_statements.ts` provide (written on another branch): each
 * rejects until `PgTx` imports the real one. Temporary: delete this module
 * once those exist.
 *
 * @module
 */

import type { EventType } from "../../audit.ts";
import type {
  AuditLogQuery,
  AuditLogRow,
  LeaseDetail,
  LeaseFilter,
  LicenseFileRow,
  LicenseInfo,
  NewLicenseRow,
  Pool,
  PoolLicenseCounts,
  RenewableLicense,
  SeatChange,
} from "../store.ts";
import type { TxSql } from "./connect.ts";

function pending(name: string): Promise<never> {
  return Promise.reject(new Error(`PostgreSQL: ${name} is not implemented yet`));
}

/** See `Tx.leaseDetails`. */
export function leaseDetails(_sql: TxSql, _filter?: LeaseFilter): Promise<LeaseDetail[]> {
  return pending("leaseDetails");
}
/** See `Tx.poolLicenseCounts`. */
export function poolLicenseCounts(
  _sql: TxSql,
  _at: { now: number; within: number },
): Promise<PoolLicenseCounts[]> {
  return pending("poolLicenseCounts");
}
/** See `Tx.pools`. */
export function pools(_sql: TxSql): Promise<Pool[]> {
  return pending("pools");
}
/** See `Tx.auditLogRows`. */
export function auditLogRows(_sql: TxSql, _query: AuditLogQuery): Promise<AuditLogRow[]> {
  return pending("auditLogRows");
}
/** See `Tx.auditEventCounts`. */
export function auditEventCounts(
  _sql: TxSql,
  _event: EventType,
  _since: number,
): Promise<{ poolId: number | null; count: number }[]> {
  return pending("auditEventCounts");
}
/** See `Tx.deleteAuditBefore`. */
export function deleteAuditBefore(_sql: TxSql, _cutoff: number, _limit: number): Promise<number> {
  return pending("deleteAuditBefore");
}
/** See `Tx.lastAuditId`. */
export function lastAuditId(_sql: TxSql): Promise<number> {
  return pending("lastAuditId");
}
/** See `Tx.seatChanges`. */
export function seatChanges(
  _sql: TxSql,
  _range: { since: number; bucketSeconds: number },
): Promise<SeatChange[]> {
  return pending("seatChanges");
}
/** See `Tx.conflictingLicense`. */
export function conflictingLicense(
  _sql: TxSql,
  _license: { guid: string; key: string; file: Uint8Array },
): Promise<string | undefined> {
  return pending("conflictingLicense");
}
/** See `Tx.insertLicense`. */
export function insertLicense(_sql: TxSql, _row: NewLicenseRow, _now: number): Promise<number> {
  return pending("insertLicense");
}
/** See `Tx.insertSeats`. */
export function insertSeats(
  _sql: TxSql,
  _licenseId: number,
  _count: number,
  _now: number,
): Promise<void> {
  return pending("insertSeats");
}
/** See `Tx.licenseByGuid`. */
export function licenseByGuid(_sql: TxSql, _guid: string): Promise<LicenseInfo | undefined> {
  return pending("licenseByGuid");
}
/** See `Tx.licenses`. */
export function licenses(
  _sql: TxSql,
  _filter?: { poolId?: number; expiringBy?: number },
): Promise<LicenseInfo[]> {
  return pending("licenses");
}
/** See `Tx.licenseSeats`. */
export function licenseSeats(_sql: TxSql, _licenseId: number): Promise<LicenseInfo[]> {
  return pending("licenseSeats");
}
/** See `Tx.deleteLicense`. */
export function deleteLicense(_sql: TxSql, _id: number): Promise<void> {
  return pending("deleteLicense");
}
/** See `Tx.renewableLicense`. */
export function renewableLicense(
  _sql: TxSql,
  _guid: string,
): Promise<RenewableLicense | undefined> {
  return pending("renewableLicense");
}
/** See `Tx.renewLicense`. */
export function renewLicense(_sql: TxSql, _id: number, _file: LicenseFileRow): Promise<void> {
  return pending("renewLicense");
}
