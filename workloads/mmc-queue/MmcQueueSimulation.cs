namespace BatchRunner.Workloads.MmcQueue;

/// <summary>Inputs of one M/M/c simulation run.</summary>
/// <param name="ArrivalRate">Poisson arrival rate λ.</param>
/// <param name="ServiceRate">Exponential service rate μ of each server.</param>
/// <param name="Servers">Number of servers c.</param>
/// <param name="Customers">Customers measured after the warm-up.</param>
/// <param name="WarmupCustomers">Customers simulated first and discarded, so the queue starts measuring near steady state.</param>
public sealed record MmcQueueSettings(double ArrivalRate, double ServiceRate, int Servers, long Customers, long WarmupCustomers);

/// <summary>What one simulation run measured.</summary>
/// <param name="MeanWait">Mean time in the queue (Wq) of the measured customers.</param>
/// <param name="MeanTimeInSystem">Mean time from arrival to departure (W) of the measured customers.</param>
/// <param name="Utilisation">Fraction of server capacity busy while the measured customers were in the system.</param>
/// <param name="ProbabilityOfWaiting">Fraction of measured customers who found every server busy.</param>
/// <param name="CustomersMeasured">Number of customers the means are over.</param>
public sealed record MmcQueueStatistics(
    double MeanWait, double MeanTimeInSystem, double Utilisation, double ProbabilityOfWaiting, long CustomersMeasured);

/// <summary>
/// Event-driven simulation of an M/M/c queue with one FIFO queue in front of c identical servers.
/// </summary>
public static class MmcQueueSimulation
{
    /// <summary>
    /// Simulates arrivals and departures until every measured customer has left.
    /// The result depends only on the settings and the state of <paramref name="random"/>.
    /// </summary>
    public static MmcQueueStatistics Run(MmcQueueSettings settings, Random random)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Servers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Customers, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.WarmupCustomers);

        var firstMeasured = settings.WarmupCustomers;
        var lastMeasured = settings.WarmupCustomers + settings.Customers - 1;
        bool IsMeasured(long customer) => customer >= firstMeasured && customer <= lastMeasured;

        // The event list holds the next arrival and at most one departure per busy server.
        var events = new PriorityQueue<QueueEvent, double>(settings.Servers + 1);
        var waitingLine = new Queue<QueueEvent>();
        var busyServers = 0;
        double lastEventTime = 0, busyServerTime = 0;
        double measurementStart = 0, busyServerTimeAtMeasurementStart = 0;
        double totalWait = 0, totalTimeInSystem = 0;
        long customersWhoWaited = 0, measuredDepartures = 0;

        var firstArrival = Exponential(random, settings.ArrivalRate);
        events.Enqueue(new QueueEvent(IsArrival: true, Customer: 0, ArrivalTime: firstArrival), firstArrival);

        while (true)
        {
            events.TryDequeue(out var current, out var now);
            busyServerTime += busyServers * (now - lastEventTime);
            lastEventTime = now;

            if (current.IsArrival)
            {
                if (current.Customer == firstMeasured)
                {
                    measurementStart = now;
                    busyServerTimeAtMeasurementStart = busyServerTime;
                }
                // Arrivals continue past the last measured customer so the servers stay under
                // steady-state load until that customer leaves; FIFO keeps later customers
                // from affecting the measured ones.
                var nextArrival = now + Exponential(random, settings.ArrivalRate);
                events.Enqueue(new QueueEvent(IsArrival: true, current.Customer + 1, nextArrival), nextArrival);

                if (busyServers < settings.Servers)
                {
                    busyServers++;
                    StartService(current, now);
                }
                else
                {
                    waitingLine.Enqueue(current);
                }
                continue;
            }

            if (IsMeasured(current.Customer))
            {
                totalTimeInSystem += now - current.ArrivalTime;
                if (++measuredDepartures == settings.Customers)
                {
                    break;
                }
            }
            if (waitingLine.TryDequeue(out var next))
            {
                StartService(next, now);
            }
            else
            {
                busyServers--;
            }
        }

        var measuredTime = lastEventTime - measurementStart;
        return new MmcQueueStatistics(
            MeanWait: totalWait / settings.Customers,
            MeanTimeInSystem: totalTimeInSystem / settings.Customers,
            Utilisation: (busyServerTime - busyServerTimeAtMeasurementStart) / (settings.Servers * measuredTime),
            ProbabilityOfWaiting: (double)customersWhoWaited / settings.Customers,
            CustomersMeasured: settings.Customers);

        void StartService(QueueEvent arrival, double now)
        {
            if (IsMeasured(arrival.Customer))
            {
                // A customer served on arrival has now == ArrivalTime exactly, so the wait is exactly 0.
                var wait = now - arrival.ArrivalTime;
                totalWait += wait;
                if (wait > 0)
                {
                    customersWhoWaited++;
                }
            }
            var departure = now + Exponential(random, settings.ServiceRate);
            events.Enqueue(arrival with { IsArrival = false }, departure);
        }
    }

    /// <summary>An exponentially distributed duration with the given rate (inverse transform).</summary>
    private static double Exponential(Random random, double rate) =>
        -Math.Log(1.0 - random.NextDouble()) / rate;

    /// <summary>A customer's arrival or departure; the event time is its priority in the event list.</summary>
    private readonly record struct QueueEvent(bool IsArrival, long Customer, double ArrivalTime);
}
