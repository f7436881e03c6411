// Before kafkajs loads: two allocation fixes to its producer (lib/kafkajs-patches.ts).
import "../../lib/kafkajs-patches.ts";
import { AssignerProtocol, type PartitionAssigner } from "kafkajs";

/**
 * Assigns partition number p of every subscribed topic to the same member
 * (members sorted by id, partition p -> member p mod n). Auction-scoped topics
 * are keyed by auction_id with equal partition counts, so this keeps an
 * auction's bids and its auction record with one owner (kafkajs ships only a
 * round-robin assigner, which would split them).
 */
export const CoPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: "GavelCoPartitioned",
  version: 0,
  async assign({ members, topics }) {
    const sorted = members.map((m) => m.memberId).sort();
    const assignment = new Map<string, Record<string, number[]>>();
    for (const topic of topics) {
      for (const m of cluster.findTopicPartitionMetadata(topic)) {
        const member = sorted[m.partitionId % sorted.length];
        if (member === undefined) continue;
        const a = assignment.get(member) ?? {};
        const list = a[topic] ?? [];
        list.push(m.partitionId);
        a[topic] = list;
        assignment.set(member, a);
      }
    }
    return sorted.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 0,
        assignment: assignment.get(memberId) ?? {},
        userData: Buffer.alloc(0),
      }),
    }));
  },
  protocol({ topics }) {
    return {
      name: "GavelCoPartitioned",
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    };
  },
});
